using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Text.Json;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests;

/// <summary>The worker's commands run as a user runs them: the real executable, in a fresh folder.</summary>
public class When_a_user_runs_the_commands
{
    private static readonly string[] RequiredOfLeadCaptured = ["email", "leadId", "occurredAt", "source", "consent"];
    private static readonly string Sample = Path.Combine(Repository.Root, "samples", "events.ndjson");

    /// <summary>The real executable in <paramref name="folder"/>, as a user runs it; exit code, standard output and error.</summary>
    internal static async Task<(int Code, string Out, string Error)> Run(string folder, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(LeadStore).Assembly.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("Nurture__Database__Provider");
        start.Environment.Remove("ConnectionStrings__Nurture");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Should_ingest_into_sqlite_in_the_working_folder_and_apply_nothing_twice()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-ingest-").FullName;

        var first = await Run(folder, "ingest", Sample);
        var second = await Run(folder, "ingest", Sample);

        Assert.True(first.Code == 0, first.Error);
        Assert.True(File.Exists(Path.Combine(folder, "nurture.db")));
        using var a = JsonDocument.Parse(first.Out);
        using var b = JsonDocument.Parse(second.Out);
        var lines = File.ReadLines(Sample).Count(l => l.Length > 0);
        Assert.Equal(lines, a.RootElement.GetProperty("applied").GetInt32());
        Assert.Equal(0, b.RootElement.GetProperty("applied").GetInt32());
        Assert.Equal(lines, b.RootElement.GetProperty("duplicates").GetInt32());
        Assert.Equal(a.RootElement.GetProperty("mqlValue").GetRawText(), b.RootElement.GetProperty("mqlValue").GetRawText());
        Assert.True(a.RootElement.GetProperty("mqlValue").GetProperty("value").GetDecimal() > 0);
    }

    [Theory]
    [InlineData(new[] { "repaly", "samples/events.ndjson" }, "nurture: unknown command 'repaly'; did you mean replay?")]
    [InlineData(new[] { "ingset" }, "did you mean ingest?")]
    [InlineData(new[] { "--feeed", "samples/events.ndjson" }, "nurture: unknown option '--feeed'; did you mean --feed?")]
    [InlineData(new[] { "run", "--url", "http://127.0.0.1:5999" }, "run: unknown option '--url'; did you mean --urls?")]
    [InlineData(new[] { "ingest", "--bacth", "10" }, "ingest: unknown option '--bacth'; did you mean --batch?")]
    [InlineData(new[] { "demo", "--leeds", "10" }, "demo: unknown option '--leeds'; did you mean --leads?")]
    public async Task Should_refuse_a_mistyped_verb_or_option_with_exit_code_2_naming_the_one_meant_and_start_nothing(string[] args, string message)
    {
        var folder = Directory.CreateTempSubdirectory("nurture-typo-").FullName;

        var result = await Run(folder, args);

        Assert.Equal(2, result.Code);
        Assert.Contains(message, result.Error, StringComparison.Ordinal);
        Assert.Empty(result.Out);
        Assert.Empty(Directory.GetFileSystemEntries(folder)); // no database, no key file: the worker never started
    }

    [Fact]
    public async Task Should_ingest_from_a_pipe_reading_it_once()
    {
        // As `ingest <(zcat events.ndjson.gz)` gives it: a path that can be read once. Its bytes, with a line that cannot
        // be read, come from another process's writes.
        var folder = Directory.CreateTempSubdirectory("nurture-pipe-").FullName;
        var pipe = Path.Combine(folder, "events.pipe");
        using (var mkfifo = Process.Start("mkfifo", [pipe])) await mkfifo.WaitForExitAsync();
        var bytes = File.ReadAllBytes(Sample).Concat("{not json\n"u8.ToArray()).ToArray();
        var writing = Task.Run(() => File.WriteAllBytesAsync(pipe, bytes));

        var result = await Run(folder, "ingest", pipe);

        if (!writing.IsCompleted)
        {
            // The command never read it: let the writer go, so the test fails rather than hangs.
            await using var drain = new FileStream(pipe, FileMode.Open, FileAccess.Read);
            await drain.CopyToAsync(Stream.Null);
        }
        await writing;
        Assert.True(result.Code == 0, result.Error);
        using var json = JsonDocument.Parse(result.Out);
        Assert.Equal(File.ReadLines(Sample).Count(l => l.Length > 0), json.RootElement.GetProperty("applied").GetInt32());
        var rejected = Assert.Single(json.RootElement.GetProperty("rejected").EnumerateArray());
        Assert.Equal(File.ReadLines(Sample).Count() + 1, rejected.GetProperty("line").GetInt32());
    }

    [Fact]
    public async Task Should_show_progress_with_rate_and_time_left_on_stderr_while_stdout_stays_the_result()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-progress-").FullName;

        var sample = await Run(folder, "sample", "--leads", "2000");
        var events = Path.Combine(folder, "events.ndjson");
        await File.WriteAllTextAsync(events, sample.Out);
        var ingest = await Run(folder, "ingest", events);

        Assert.True(sample.Code == 0, sample.Error);
        var lines = sample.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.StartsWith("{\"type\":", l, StringComparison.Ordinal)); // events only on stdout
        Assert.Matches($@"sample: +{lines.Length:N0}/{lines.Length:N0} events \(100 %\) +[\d,]+ events/s +done in \d+:\d\d", sample.Error);
        Assert.True(ingest.Code == 0, ingest.Error);
        using var json = JsonDocument.Parse(ingest.Out); // stdout is the JSON result alone
        Assert.Equal(lines.Length, json.RootElement.GetProperty("applied").GetInt32());
        var progress = ingest.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // Lines on the way come every two seconds (When_long_work_shows_progress); a fast machine may need none.
        Assert.All(progress[..^1], l => Assert.Matches(@"^ingest: +[\d,]+/[\d,]+ events \(\d+ %\) +[\d,]+ events/s +\d+:\d\d left$", l));
        Assert.Matches($@"ingest: +{lines.Length:N0}/{lines.Length:N0} events \(100 %\) +[\d,]+ events/s +done in", progress[^1]);
    }

    [Fact]
    public async Task Should_stop_with_the_setting_named_when_the_provider_is_wrong()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-bad-").FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "appsettings.json"), """{ "Nurture": { "Database": { "Provider": "Oracle" } } }""");

        var result = await Run(folder, "migrate");

        Assert.Equal(2, result.Code);
        Assert.Contains("Nurture:Database:Provider: 'Oracle' is not a provider", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_stop_the_worker_at_start_up_naming_a_bus_setting_that_cannot_work()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-bad-bus-").FullName;

        var result = await Run(folder, "--Nurture:Bus:Transport=Kafka");

        Assert.Equal(2, result.Code);
        Assert.Contains("Nurture:Bus:Transport: 'Kafka' is not a transport", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_stop_the_worker_at_start_up_when_workers_on_a_database_server_would_not_share_their_secrets()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-no-key-").FullName;

        var result = await Run(folder, "--Nurture:Database:Provider=PostgreSql", "--ConnectionStrings:Nurture=Host=localhost;Database=nurture");

        Assert.Equal(2, result.Code);
        Assert.Contains("Nurture:Email:UnsubscribeKey and Nurture:Api:Key: required when the database is a server", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_run_the_worker_with_no_command_on_sqlite_and_the_in_memory_bus_and_consume_a_fed_file()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-worker-").FullName;
        // More events than the feed may run ahead of the worker on the in-memory bus, so it also waits for the worker.
        var events = Path.Combine(folder, "events.ndjson");
        var sample = await Run(folder, "sample", "--leads", "1400");
        await File.WriteAllTextAsync(events, sample.Out);
        var lines = File.ReadLines(events).Count(l => l.Length > 0);
        Assert.InRange(lines, WorkerHost.FeedAhead + 1000, int.MaxValue);
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(LeadStore).Assembly.Location);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add($"http://127.0.0.1:{port}");
        start.ArgumentList.Add("--feed");
        start.ArgumentList.Add(events);
        start.Environment.Remove("Nurture__Database__Provider");
        start.Environment.Remove("ConnectionStrings__Nurture");
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var ready = await Messaging.Eventually.Until(async () =>
            {
                try
                {
                    return await http.GetStringAsync("/health/ready");
                }
                catch (HttpRequestException)
                {
                    return "";
                }
            }, body => body.Contains("Healthy", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "the worker to answer /health/ready");

            Assert.Contains("\"database\":{\"status\":\"Healthy\"", ready, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(folder, "nurture.db")));
            await Messaging.Eventually.Until(() => Task.FromResult(Text(output)), o => o.Contains("in-memory bus", StringComparison.Ordinal), what: "the start-up summary");
            Assert.Contains($"SQLite {Path.Combine(folder, "nurture.db")}", Text(output), StringComparison.Ordinal);

            // The fed events went through the bus, the consumers and the database, and end where replay ends.
            await Messaging.Eventually.Until(() => Task.FromResult(Text(output)), o => o.Contains("Funnel (reached)", StringComparison.Ordinal), TimeSpan.FromMinutes(3), "the fed events handled");
            Assert.Contains($"Handled {lines} of them.", Text(output), StringComparison.Ordinal);
            var replay = Core.Replay.Run((await Cli.ReplayCommand.ReadAsync(new StreamReader(events), default)).Events, Core.DefaultDefinition.Create());
            var funnel = await new LeadStore(new Database(DatabaseProvider.Sqlite, $"Data Source={Path.Combine(folder, "nurture.db")}")).ReadFunnelAsync();
            Assert.Equal(replay.Summary.Funnel.Select(f => (f.Stage, f.Reached)), funnel.Select(f => (f.Stage, f.Reached)));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    private static string Text(System.Text.StringBuilder output)
    {
        lock (output) return output.ToString();
    }

    internal static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Should_tell_the_demo_story_in_the_terminal_the_mail_folder_and_the_database()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-demo-").FullName;

        var result = await Run(folder, "demo", "--leads", "60", "--days", "40", "--seconds", "6", "--exit", "--urls", $"http://127.0.0.1:{FreePort()}");

        Assert.True(result.Code == 0, result.Error);
        Assert.Contains("garden-landscaping business, a B2B software company and a solar installer", result.Out, StringComparison.Ordinal);
        Assert.Matches(@"demo: +([\d,]+)/\1 events \(100 %\).*done in .*day +40/40", result.Error); // every generated event handled, shown on stderr
        Assert.Contains("MQL value: ", result.Out, StringComparison.Ordinal);
        Assert.Contains("/dashboard", result.Out, StringComparison.Ordinal);
        var mail = Path.Combine(folder, "nurture-demo", "mail");
        var emails = Directory.GetFiles(mail, "*.eml");
        Assert.NotEmpty(emails);
        Assert.Contains($"the emails:    {mail} ({emails.Length} .eml files", result.Out, StringComparison.Ordinal);
        var sent = Regex.Match(result.Out, @"Emails: (\d+) sent").Groups[1].Value;
        Assert.Equal(emails.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), sent); // each sent step is one file, none twice

        // `report` reads the same database back.
        File.WriteAllText(Path.Combine(folder, "appsettings.json"), $$"""{ "ConnectionStrings": { "Nurture": "Data Source={{Path.Combine(folder, "nurture-demo", "nurture-demo.db").Replace("\\", "/", StringComparison.Ordinal)}}" } }""");
        var demoReport = await Run(folder, "report", "--json");
        Assert.True(demoReport.Code == 0, demoReport.Error);
        using var json = JsonDocument.Parse(demoReport.Out);
        Assert.Equal(60, json.RootElement.GetProperty("report").GetProperty("funnel")[0].GetProperty("reached").GetInt32());
        Assert.Contains(json.RootElement.GetProperty("timeInStage").EnumerateArray(), t => t.GetProperty("stage").GetString() == "lead" && t.GetProperty("averageDays").GetDouble() > 0);
        var table = await Run(folder, "report");
        Assert.Contains("Funnel (definition", table.Out, StringComparison.Ordinal);
        Assert.Matches(@"Lead +60 ", table.Out);
    }

    [Fact]
    public async Task Should_forecast_the_article_example_with_the_assumptions_shown()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-forecast-").FullName;

        var result = await Run(folder, "forecast", "--spend", "1000", "--cost-per-lead", "10", "--lead-to-mql", "0.5", "--close-rate", "0.2", "--average-revenue", "500", "--json");
        var table = await Run(folder, "forecast", "--leads", "100");
        var missing = await Run(folder, "forecast", "--spend", "1000");
        var wrong = await Run(folder, "forecast", "--leads", "100", "--close-rate", "20");
        var negative = await Run(folder, "forecast", "--leads", "-5");
        var fromAd = await Run(folder, "forecast", "--spend", "1000", "--cost-per-click", "0.5", "--click-to-lead", "0.05", "--lead-to-mql", "0.25", "--close-rate", "0.2", "--average-revenue", "500", "--json");

        Assert.True(result.Code == 0, result.Error);
        using var json = JsonDocument.Parse(result.Out);
        var f = json.RootElement.GetProperty("forecast");
        Assert.Equal(100, f.GetProperty("leads").GetDouble());
        Assert.Equal(50, f.GetProperty("mqls").GetDouble());
        Assert.Equal(10, f.GetProperty("customers").GetDouble());
        Assert.Equal(5000m, f.GetProperty("revenue").GetDecimal());
        Assert.Contains(f.GetProperty("assumptions").EnumerateArray(), a => a.GetString()!.Contains("close rate 20.0", StringComparison.Ordinal));
        Assert.Contains("one MQL is worth 100 €", table.Out, StringComparison.Ordinal); // the article's 20 % × 500 € (the priors, no database yet)
        Assert.Contains("priors", table.Out, StringComparison.Ordinal);
        Assert.Equal(2, missing.Code);
        Assert.Contains("give --leads N, or --spend S with --cost-per-lead C", missing.Error, StringComparison.Ordinal);
        Assert.Equal(2, wrong.Code);
        Assert.Contains("--close-rate: 20 is not a share between 0 and 1", wrong.Error, StringComparison.Ordinal);
        Assert.Equal(100m, f.GetProperty("mqlValue").GetDecimal()); // what the text prints, in the JSON too
        Assert.Equal(2, negative.Code);
        Assert.Contains("--leads: -5 is negative", negative.Error, StringComparison.Ordinal);
        Assert.True(fromAd.Code == 0, fromAd.Error);
        using var ad = JsonDocument.Parse(fromAd.Out);
        Assert.Equal(2000, ad.RootElement.GetProperty("forecast").GetProperty("clicks").GetDouble());
        Assert.Equal(100, ad.RootElement.GetProperty("forecast").GetProperty("leads").GetDouble());
    }

    [Fact]
    public async Task Should_simulate_a_stricter_definition_on_the_stored_history_and_change_nothing()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-simulate-").FullName;
        Assert.Equal(0, (await Run(folder, "ingest", Sample)).Code);
        var live = await Run(folder, "definition");
        Assert.True(live.Code == 0, live.Error);
        using (var current = JsonDocument.Parse(live.Out))
        {
            var stricter = System.Text.Json.Nodes.JsonNode.Parse(current.RootElement.GetRawText())!;
            stricter["Version"] = "proposal-1";
            stricter["Qualification"]!["MqlThreshold"] = 90;
            await File.WriteAllTextAsync(Path.Combine(folder, "proposal.json"), new System.Text.Json.Nodes.JsonObject { ["Nurture"] = new System.Text.Json.Nodes.JsonObject { ["Definition"] = stricter } }.ToJsonString());
        }
        var before = await Run(folder, "report", "--json");

        var result = await Run(folder, "simulate", "proposal.json", "--json");

        Assert.True(result.Code == 0, result.Error);
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.True(root.GetProperty("proposed").GetProperty("mqls").GetInt32() < root.GetProperty("live").GetProperty("mqls").GetInt32());
        Assert.True(root.GetProperty("stopBeingMql").GetInt32() > 0);
        Assert.Equal(0, root.GetProperty("becomeMql").GetInt32());
        Assert.All(root.GetProperty("flips").EnumerateArray(), f => Assert.False(f.GetProperty("isMql").GetBoolean()));
        // simulate's live MQLs and report's "reached" for Mql count the same leads.
        using var report = JsonDocument.Parse(before.Out);
        var reachedMql = report.RootElement.GetProperty("report").GetProperty("funnel").EnumerateArray().Single(s => s.GetProperty("stage").GetString() == "mql").GetProperty("reached").GetInt32();
        Assert.Equal(reachedMql, root.GetProperty("live").GetProperty("mqls").GetInt32());
        Assert.Equal(reachedMql, root.GetProperty("stored").GetProperty("mqls").GetInt32());
        Assert.Equal(WithoutTime(before.Out), WithoutTime((await Run(folder, "report", "--json")).Out)); // the live data is untouched
        var missing = await Run(folder, "simulate", "nope.json");
        Assert.Equal(2, missing.Code);
        Assert.Contains("does not exist", missing.Error, StringComparison.Ordinal);
    }

    private static string WithoutTime(string reportJson) => Regex.Replace(reportJson, "\"asOf\": \"[^\"]+\"", "");

    [Fact]
    public async Task Should_replay_to_json_and_list_unreadable_lines_with_their_reason()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-replay-").FullName;
        var events = Path.Combine(folder, "events.ndjson");
        await File.WriteAllLinesAsync(events, [.. File.ReadLines(Sample).Take(50), """{"type":"LeadCaptured","eventId":"3f1c2b4e-0000-4000-8000-000000000001"}"""]);

        var result = await Run(folder, "replay", events);

        Assert.Equal(0, result.Code);
        using var json = JsonDocument.Parse(result.Out);
        var rejected = Assert.Single(json.RootElement.GetProperty("rejected").EnumerateArray());
        Assert.Equal(51, rejected.GetProperty("line").GetInt32());
        var reason = rejected.GetProperty("reason").GetString()!;
        Assert.EndsWith(": required but missing.", reason, StringComparison.Ordinal);
        foreach (var field in RequiredOfLeadCaptured) Assert.Contains(field, reason, StringComparison.Ordinal);
        Assert.NotEmpty(json.RootElement.GetProperty("leads").EnumerateArray());
    }
}
