using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using Nurture.Worker.Scheduling;
using Nurture.Worker.Tests.Email;
using Nurture.Worker.Tests.Messaging;

namespace Nurture.Worker.Tests.Api;

/// <summary>
/// OpenTelemetry listens to every meter named "Nurture" in the process, so the scrape is exact only while no other
/// worker runs in this test process: this collection runs alone.
/// </summary>
[CollectionDefinition(nameof(MetricsRunAlone), DisableParallelization = true)]
public sealed class MetricsRunAlone;

/// <summary>/metrics scraped over real HTTP after a known sequence of events; the dashboard rendered in headless Chromium.</summary>
[Collection(nameof(MetricsRunAlone))]
public partial class When_dashboards_read_what_nurture_emits
{
    private static readonly string Root = Repository.Root;

    private static string Line(string type, string leadId, string extra, int minutes) =>
        $$"""{"type":"{{type}}","eventId":"{{Guid.NewGuid()}}","leadId":"{{leadId}}","occurredAt":"{{MailRig.Monday.AddMinutes(minutes - 60):O}}"{{extra}}}""";

    private static string CapturedLine(string leadId, string source) =>
        Line("LeadCaptured", leadId, $$""","email":"{{leadId}}@softwarehaus.example","firstName":"Anna","industry":"software","companySize":50,"country":"DE","timeZone":"Europe/Berlin","language":"de","source":"{{source}}","consent":true""", 0);

    /// <summary>Sample lines of the Prometheus text format: name{labels} value.</summary>
    private static double Value(string scrape, string name, params (string Key, string Value)[] labels)
    {
        foreach (var line in scrape.Split('\n'))
        {
            var match = SampleLine().Match(line);
            if (!match.Success || match.Groups["name"].Value != name) continue;
            var text = match.Groups["labels"].Value;
            if (labels.All(l => text.Contains($"{l.Key}=\"{l.Value}\"", StringComparison.Ordinal))) return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
        }
        throw new Xunit.Sdk.XunitException($"{name}{{{string.Join(",", labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} is not in the scrape.");
    }

    private static double Sum(string scrape, string name) => scrape.Split('\n').Select(l => SampleLine().Match(l))
        .Where(m => m.Success && m.Groups["name"].Value == name).Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)")]
    private static partial Regex SampleLine();

    private static async Task<(int Code, string Output)> Tool(string file, string arguments, string? input = null, string? folder = null)
    {
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null, WorkingDirectory = folder ?? "" };
        start.Environment.Remove("Nurture__Database__Provider");
        start.Environment.Remove("ConnectionStrings__Nurture");
        using var process = Process.Start(start)!;
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
        }
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }

    private static string? Which(string tool) =>
        Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    [SkippableFact]
    public async Task Should_expose_the_known_sequence_in_metrics_that_pass_promtool_and_feed_every_grafana_panel()
    {
        var promtool = Which("promtool");
        Skip.If(promtool is null, "promtool (Debian's prometheus package) is not installed; ./test.sh installs it.");
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();
        string[] batch =
        [
            CapturedLine("m-1", "webinar"), CapturedLine("m-2", "ads"), CapturedLine("m-3", "ads"),
            Line("LeadActivityRecorded", "m-1", ",\"activity\":\"trialStarted\"", 5),
            Line("LeadActivityRecorded", "m-1", ",\"activity\":\"demoRequested\"", 10),
            """{"type":"CampaignSpendRecorded","eventId":"7a1c2b4e-0000-4000-8000-000000000001","occurredAt":"2026-03-01T00:00:00Z","channel":"webinar","amount":400,"currency":"EUR","periodStart":"2026-02-01","periodEnd":"2026-02-28"}""",
        ];
        var posted = await http.PostAsync("/api/events", new StringContent(string.Join("\n", batch), Encoding.UTF8, "application/x-ndjson"));
        Assert.True(posted.StatusCode == System.Net.HttpStatusCode.Accepted, await posted.Content.ReadAsStringAsync());
        await http.PostAsync("/api/events", new StringContent(batch[0], Encoding.UTF8, "application/json")); // a duplicate
        await http.PostAsync("/api/events", new StringContent("{not json", Encoding.UTF8, "application/json")); // a rejected line
        await rig.Dispatch.DispatchAllDueAsync(); // three welcome emails go out (Monday 09:30 in Berlin)
        var link = (await File.ReadAllTextAsync(Directory.GetFiles(rig.MailFolder).First(f => File.ReadAllText(f).Contains("m-2@", StringComparison.Ordinal))))
            .Split('\n').First(l => l.StartsWith(" <http", StringComparison.Ordinal)).Trim().Trim('<', '>');
        await http.PostAsync(link, new FormUrlEncodedContent([KeyValuePair.Create("List-Unsubscribe", "One-Click")]));
        rig.Clock.Advance(TimeSpan.FromHours(49));
        await rig.App.Services.GetRequiredService<IEnumerable<Microsoft.Extensions.Hosting.IHostedService>>().OfType<Nurture.Worker.Messaging.OutboxRelay>().Single().PublishPendingAsync(default);
        var sla = ActivatorUtilities.CreateInstance<CheckHandOffSla>(rig.App.Services);
        Assert.Equal(1, await sla.CheckAsync(default));

        var scrape = await Eventually.Until(() => http.GetStringAsync("/metrics"), s => s.Contains("nurture_leads{", StringComparison.Ordinal) && s.Contains("stage=\"Mql\"} 1", StringComparison.Ordinal), TimeSpan.FromSeconds(20), "the funnel gauges");

        Assert.Equal(7, Sum(scrape, "nurture_events_processed_total")); // the one-click unsubscribe is an event like the others
        Assert.Equal(1, Sum(scrape, "nurture_events_duplicated_total"));
        Assert.Equal(1, Value(scrape, "nurture_events_rejected_total", ("origin", "api")));
        Assert.Equal(1, Value(scrape, "nurture_stage_transitions_total", ("from", "Lead"), ("to", "Mql"), ("source", "webinar")));
        Assert.Equal(3, Value(scrape, "nurture_leads", ("stage", "Lead")) + Value(scrape, "nurture_leads", ("stage", "Mql")));
        Assert.Equal(1, Value(scrape, "nurture_funnel_reached", ("stage", "Mql")));
        Assert.Equal(Math.Round(1 / 3.0, 4), Value(scrape, "nurture_conversion_ratio", ("from", "Lead"), ("to", "Mql")), 4);
        Assert.Equal(100, Value(scrape, "nurture_mql_value", ("source", "all"), ("bound", "estimate")));
        Assert.True(Value(scrape, "nurture_mql_value", ("source", "all"), ("bound", "low")) < 100);
        Assert.Equal(400, Value(scrape, "nurture_mql_cost", ("source", "webinar")));
        Assert.Equal(3, Value(scrape, "nurture_emails_sent_total", ("track", "software")));
        Assert.Equal(1, Sum(scrape, "nurture_unsubscribes_total"));
        Assert.Equal(1, Sum(scrape, "nurture_handoff_sla_breaches_total"));
        Assert.Equal(3, Value(scrape, "nurture_dispatch_lag_seconds_count"));
        Assert.Equal(1, Value(scrape, "nurture_stage_duration_seconds_count", ("stage", "Lead")));
        Assert.DoesNotContain("m-1", scrape, StringComparison.Ordinal); // no lead id in a label
        Assert.DoesNotContain("@softwarehaus", scrape, StringComparison.Ordinal);

        var (code, lint) = await Tool(promtool!, "check metrics", scrape);
        Assert.True(code == 0, "promtool check metrics: " + lint);

        // Every metric the Grafana dashboard queries is one the worker exposes.
        using var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "grafana", "dashboards", "nurture.json")));
        var exposed = scrape.Split('\n').Select(l => SampleLine().Match(l)).Where(m => m.Success).Select(m => m.Groups["name"].Value).ToHashSet();
        var queried = dashboard.RootElement.GetProperty("panels").EnumerateArray().SelectMany(p => p.GetProperty("targets").EnumerateArray())
            .SelectMany(t => MetricName().Matches(t.GetProperty("expr").GetString()!).Select(m => m.Value)).ToHashSet();
        Assert.NotEmpty(queried);
        Assert.All(queried, name => Assert.Contains(name, exposed));
        var (configCode, configCheck) = await Tool(promtool!, $"check config {Path.Combine(Root, "deploy", "prometheus", "prometheus.yml")}");
        Assert.True(configCode == 0, configCheck);
    }

    [GeneratedRegex(@"\bnurture_[a-z_]+\b")]
    private static partial Regex MetricName();

    /// <summary>
    /// Two worker processes on one database both export the database-wide gauges; a real Prometheus scrapes both, and every
    /// panel query of the Grafana dashboard must still give the database's true figures, once, with the currency from the label.
    /// </summary>
    [SkippableFact]
    public async Task Should_give_the_true_totals_in_every_grafana_query_when_two_workers_share_one_database()
    {
        var prometheus = Which("prometheus");
        Skip.If(prometheus is null, "Prometheus (Debian's prometheus package) is not installed; ./test.sh installs it.");
        var folder = Directory.CreateTempSubdirectory("nurture-two-workers-").FullName;
        var worker = typeof(Nurture.Worker.Storage.LeadStore).Assembly.Location;
        var (ingested, ingestOutput) = await Tool("dotnet", $"{worker} ingest {Path.Combine(Root, "samples", "events.ndjson")}", folder: folder);
        Assert.True(ingested == 0, ingestOutput);
        var ports = new[] { When_a_user_runs_the_commands.FreePort(), When_a_user_runs_the_commands.FreePort(), When_a_user_runs_the_commands.FreePort() };
        var processes = new List<Process>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                for (var attempt = 1; ; attempt++)
                {
                    // The jobs (decay, dispatch) stay off so the database holds still while the figures are compared.
                    var process = Start("dotnet", [worker, "--urls", $"http://127.0.0.1:{ports[i]}", "--Nurture:Metrics:RefreshSeconds=1", "--Nurture:Schedule:Enabled=false"], folder);
                    processes.Add(process);
                    using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[i]}") };
                    // Another test may take the free port before this worker binds it; the worker then exits, and another port is tried.
                    var seen = await Eventually.Until(async () => process.HasExited ? "exited" : await Scrape(http),
                        s => s == "exited" || s.Contains("nurture_leads{", StringComparison.Ordinal), TimeSpan.FromMinutes(3), $"the worker on port {ports[i]} to export the funnel gauges");
                    if (seen != "exited") break;
                    Assert.True(attempt < 3, $"the worker exited three times (code {process.ExitCode})");
                    ports[i] = When_a_user_runs_the_commands.FreePort();
                }
            }
            using var first = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[0]}") };
            using var funnel = JsonDocument.Parse(await first.GetStringAsync("/api/funnel"));
            var leadsPerStage = funnel.RootElement.GetProperty("leadsPerStage").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
            var reached = funnel.RootElement.GetProperty("funnel").EnumerateArray().ToDictionary(s => s.GetProperty("stage").GetString()!, s => s.GetProperty("reached").GetDouble());
            var mqlValue = funnel.RootElement.GetProperty("mqlValue");

            var config = Path.Combine(folder, "prometheus.yml");
            await File.WriteAllTextAsync(config, $$"""
                global:
                  scrape_interval: 1s
                scrape_configs:
                  - job_name: nurture
                    static_configs:
                      - targets: ["127.0.0.1:{{ports[0]}}", "127.0.0.1:{{ports[1]}}"]
                """);
            processes.Add(Start(prometheus!, [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(folder, "tsdb")}", $"--web.listen-address=127.0.0.1:{ports[2]}"], folder));
            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[2]}") };
            await Eventually.Until(() => Query(api, "count(nurture_leads{stage=\"Lead\"})"), r => r.Count == 1 && r[0].Value == 2, TimeSpan.FromMinutes(2), "Prometheus to scrape both workers");

            // What the dashboard used to ask: every database-wide figure twice.
            Assert.Equal(2 * leadsPerStage.Values.Sum(), (await Query(api, "sum(nurture_leads)")).Single().Value);

            using var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Root, "deploy", "grafana", "dashboards", "nurture.json")));
            var targets = dashboard.RootElement.GetProperty("panels").EnumerateArray()
                .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => (Panel: p.GetProperty("title").GetString()!, Expr: t.GetProperty("expr").GetString()!, Legend: t.GetProperty("legendFormat").GetString()!)))
                .ToList();
            foreach (var (panel, expr, _) in targets)
            {
                var result = await Query(api, expr);
                // One series per figure: no worker's copy shows as a series of its own.
                Assert.All(result, r => Assert.False(r.Labels.ContainsKey("instance"), $"{panel}: {expr} keeps one series per worker"));
                var keys = result.Select(r => string.Join(",", r.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"))).ToList();
                Assert.True(keys.Count == keys.Distinct().Count(), $"{panel}: {expr} gives the same series twice");
            }
            var leads = await Query(api, Expr(targets, "Leads per stage now"));
            // The API's JSON names stages as the events do (camelCase); the metric's label is the stage's own name.
            Assert.Equal(leadsPerStage.Where(p => p.Value > 0).Select(p => KeyValuePair.Create(p.Key.ToLowerInvariant(), p.Value)).OrderBy(p => p.Key, StringComparer.Ordinal),
                leads.Select(r => KeyValuePair.Create(r.Labels["stage"].ToLowerInvariant(), r.Value)).Where(p => p.Value > 0).OrderBy(p => p.Key, StringComparer.Ordinal));
            Assert.Equal(240, leads.Sum(r => r.Value));
            var funnelPanel = await Query(api, Expr(targets, "Funnel: leads that reached each stage"));
            Assert.Equal(reached.Select(p => KeyValuePair.Create(p.Key.ToLowerInvariant(), p.Value)).OrderBy(p => p.Key, StringComparer.Ordinal),
                funnelPanel.Select(r => KeyValuePair.Create(r.Labels["stage"].ToLowerInvariant(), r.Value)).OrderBy(p => p.Key, StringComparer.Ordinal));
            var value = (await Query(api, Expr(targets, "MQL value (all sources)"))).Single();
            Assert.Equal(mqlValue.GetProperty("value").GetDouble(), value.Value, 2);
            // The currency is the metric's label, and the panel shows it from there (no unit fixed to one currency).
            Assert.Equal(mqlValue.GetProperty("currency").GetString(), value.Labels["currency"]);
            Assert.All(targets.Where(t => t.Expr.Contains("nurture_mql_value", StringComparison.Ordinal)), t => Assert.Contains("{{currency}}", t.Legend, StringComparison.Ordinal));
            Assert.DoesNotContain("currencyEUR", dashboard.RootElement.GetRawText(), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var process in processes)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                process.Dispose();
            }
        }
    }

    private static string Expr(List<(string Panel, string Expr, string Legend)> targets, string panel) =>
        targets.First(t => t.Panel.StartsWith(panel, StringComparison.Ordinal)).Expr;

    private static async Task<string> Scrape(HttpClient http)
    {
        try
        {
            return await http.GetStringAsync("/metrics");
        }
        catch (HttpRequestException)
        {
            return "";
        }
    }

    private static async Task<List<(Dictionary<string, string> Labels, double Value)>> Query(HttpClient prometheus, string expr)
    {
        try
        {
            using var json = JsonDocument.Parse(await prometheus.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString(expr)));
            return json.RootElement.GetProperty("data").GetProperty("result").EnumerateArray()
                .Select(r => (r.GetProperty("metric").EnumerateObject().Where(l => l.Name != "__name__").ToDictionary(l => l.Name, l => l.Value.GetString()!),
                    double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)))
                .ToList();
        }
        catch (HttpRequestException)
        {
            return [];
        }
    }

    private static Process Start(string file, string[] args, string folder)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove("Nurture__Database__Provider");
        start.Environment.Remove("ConnectionStrings__Nurture");
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    [SkippableFact]
    public async Task Should_render_the_dashboard_in_headless_chromium_with_the_funnel_numbers_visible()
    {
        var chromium = Which("chromium") ?? Which("chromium-browser");
        Skip.If(chromium is null, "Chromium (Debian's chromium package) is not installed; ./test.sh installs it.");
        // After the sample's last event, so its MQL cohorts are old enough to count per source.
        await using var rig = await MailRig.StartAsync(clock: new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 10, 0, 0, TimeSpan.Zero)));
        using var http = rig.Http();
        foreach (var chunk in (await File.ReadAllLinesAsync(Path.Combine(Root, "samples", "events.ndjson"))).Chunk(300))
        {
            var response = await http.PostAsync("/api/events", new StringContent(string.Join("\n", chunk), Encoding.UTF8, "application/x-ndjson"));
            Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        }
        using var funnel = JsonDocument.Parse(await http.GetStringAsync("/api/funnel"));
        var reached = funnel.RootElement.GetProperty("funnel").EnumerateArray().ToDictionary(s => s.GetProperty("stage").GetString()!, s => s.GetProperty("reached").GetInt32());
        var url = rig.App.Urls.First() + "/dashboard";
        const string Flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars --virtual-time-budget=15000";

        var (code, dom) = await Tool(chromium!, $"{Flags} --dump-dom {url}");

        Assert.True(code == 0, dom);
        foreach (var (stage, count) in reached)
        {
            Assert.Matches($"data-stage=\"{stage}\".*?class=\"n reached\">{count}<", dom);
        }
        Assert.Matches(@"id=""mql-value"">[^<–]*\d", dom);
        Assert.Contains("data-source=\"webinar\"", dom, StringComparison.Ordinal);
        Assert.Matches(@"data-experiment=""software-welcome-subject"".*?class=""verdict""><b>(no winner yet|[AB] wins)", dom);
        Assert.DoesNotMatch(@"id=""error"">[^<]+<", dom);

        var artifacts = Path.Combine(Root, "artifacts");
        Directory.CreateDirectory(artifacts);
        var screenshot = Path.Combine(artifacts, "dashboard.png");
        File.Delete(screenshot);
        var (shotCode, shotOutput) = await Tool(chromium!, $"{Flags} --window-size=1400,1100 --screenshot={screenshot} {url}");
        Assert.True(shotCode == 0 && File.Exists(screenshot), shotOutput);
        var png = await File.ReadAllBytesAsync(screenshot);
        Assert.True(png.Length > 10_000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', $"{screenshot} is not a PNG of the page");
    }
}
