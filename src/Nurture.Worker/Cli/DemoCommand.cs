using System.CommandLine;
using System.Globalization;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Api;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `demo`: the article's three businesses (a garden-landscaping firm, a B2B software company, a solar installer) over a
/// simulated stretch of days on an accelerated clock, through the real pipeline — the in-memory bus, the consumers,
/// SQLite, Quartz dispatching nurture emails to a folder — with progress, then the funnel and what an MQL is worth.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var leads = new Option<int>("--leads") { Description = "Leads to generate (a third per business).", DefaultValueFactory = _ => 300 };
        var days = new Option<int>("--days") { Description = "Simulated days.", DefaultValueFactory = _ => 90 };
        var seconds = new Option<int>("--seconds") { Description = "Real seconds the simulated days take.", DefaultValueFactory = _ => 45 };
        var seed = new Option<int>("--seed") { Description = "Same seed, same leads.", DefaultValueFactory = _ => 7 };
        var folder = new Option<string>("--folder") { Description = "Where the demo keeps its database and emails (started afresh each run).", DefaultValueFactory = _ => "nurture-demo" };
        var exit = new Option<bool>("--exit") { Description = "Stop when the story is told instead of keeping the dashboard up." };
        var urls = new Option<string?>("--urls") { Description = "Where the demo's dashboard and API listen.", DefaultValueFactory = _ => null };
        var command = new Command("demo", "The whole job on an accelerated clock: 90 days of leads for three businesses through the real pipeline, then the funnel, MQL value and the emails.")
        {
            leads, days, seconds, seed, folder, exit, urls,
        };
        // Settings (--Section:Key=value) arrive as unmatched tokens; StrictCommandLine checks that nothing else does.
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancel) => RunAsync(
            Math.Max(3, parse.GetValue(leads)), Math.Clamp(parse.GetValue(days), 1, 365), Math.Clamp(parse.GetValue(seconds), 1, 3600), parse.GetValue(seed),
            Path.GetFullPath(parse.GetValue(folder)!), parse.GetValue(exit), WorkerCommand.HostArguments(parse.GetValue(urls)), cancel));
        return command;
    }

    private static async Task<int> RunAsync(int leadCount, int days, int seconds, int seed, string folder, bool exit, string[] hostArgs, CancellationToken cancel)
    {
        // A worker or a demo already listening would make this one fail after it wiped its folder: look first.
        EnsureFree(hostArgs);
        // The demo's own folder starts empty, so every run tells the same story.
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(folder, "nurture-demo.db*")) File.Delete(file);
        if (Directory.Exists(Path.Combine(folder, "mail"))) Directory.Delete(Path.Combine(folder, "mail"), recursive: true);

        var end = DateTimeOffset.UtcNow;
        var start = end.AddDays(-days);
        var clock = new DemoClock(start, end, TimeSpan.FromSeconds(seconds));
        // Simulated time starts once the worker has: on a busy machine start-up alone took longer than a short demo, and
        // the whole story then happened at its last instant (a Saturday night: not one email inside the send window).
        clock.Hold();
        var definition = DefinitionSettings.Load(Settings.Load());
        var events = SampleLeads.Generate(leadCount, seed, start, days, definition).Where(e => e.OccurredAt <= end).ToList();

        // Sales' side: a CRM-like receiver for the signed hand-off webhooks.
        await using var sales = await DemoWebhookReceiver.StartAsync(cancel);
        using var readers = new DemoRecipients(Path.Combine(folder, "mail"), seed);
        await using var app = WorkerHost.Build(hostArgs, c => c.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Nurture:Webhooks:Subscriptions:0:Name"] = "demo-crm",
            ["Nurture:Webhooks:Subscriptions:0:Url"] = sales.Url,
            ["Nurture:Webhooks:Subscriptions:0:Events:0"] = "LeadHandedToSales",
            ["Nurture:Webhooks:Subscriptions:0:Secret"] = sales.Secret,
            ["Nurture:Webhooks:PollSeconds"] = "1",
            ["ConnectionStrings:Nurture"] = $"Data Source={Path.Combine(folder, "nurture-demo.db")}",
            ["Nurture:Database:Provider"] = "Sqlite",
            ["Nurture:Bus:Transport"] = "InMemory",
            ["Nurture:Email:PickupDirectory"] = Path.Combine(folder, "mail"),
            ["Nurture:Email:DispatchSeconds"] = "1",
            ["Nurture:Email:BatchSize"] = "200",
            // Leases are in simulated time, which runs thousands of times faster here: a long one keeps claims from lapsing mid-send.
            ["Nurture:Email:LeaseSeconds"] = "2592000",
            // An event handled a moment late is days late in simulated time: no welcome email counts as stale here.
            ["Nurture:Import:GraceHours"] = "87600",
            ["Nurture:Schedule:HandOffCheckMinutes"] = "1",
            ["Nurture:Schedule:DecayCheckMinutes"] = "1",
            ["Nurture:Schedule:ValueSnapshotMinutes"] = "1",
            ["Nurture:Metrics:RefreshSeconds"] = "2",
            ["Logging:LogLevel:Default"] = "Warning",
        }), s => s.AddSingleton<TimeProvider>(clock));
        var database = app.Services.GetRequiredService<Database>();
        database.Migrate();
        await app.StartAsync(cancel);
        clock.Go();
        var url = app.Urls.FirstOrDefault() ?? WorkerHost.DefaultUrl;
        var store = app.Services.GetRequiredService<LeadStore>();
        var metrics = app.Services.GetRequiredService<NurtureMetrics>();
        var bus = app.Services.GetRequiredService<IBus>();
        var c = CultureInfo.InvariantCulture;

        Console.Out.WriteLine(string.Create(c, $"""
            Nurture demo: {leadCount} leads of a garden-landscaping business, a B2B software company and a solar installer,
            {days} days from {start:yyyy-MM-dd} to {end:yyyy-MM-dd} in about {seconds} s, through the in-memory bus, SQLite and the
            nurture scheduler. Sales accepts, rejects and wins deals as it goes; emails go to {Path.Combine(folder, "mail")}.
            Watch it live: {url}/dashboard
            """));

        // The readers' clicks go through the same handler: the story's events are what it handled besides them.
        long EventsHandled() => metrics.Handled - readers.ByPeople - readers.ByMachines;

        var next = 0;
        var lastShown = DateTime.MinValue;
        using var progress = new Progress("demo", events.Count, "events");
        var interactive = !Console.IsOutputRedirected;
        sales.Print = line => Console.Out.WriteLine(interactive ? "\r" + line.PadRight(118) : line);
        while (true)
        {
            var now = clock.GetUtcNow();
            var due = new List<NurtureMessage>();
            while (next < events.Count && events[next].OccurredAt <= now) due.Add(events[next++]);
            foreach (var chunk in due.Chunk(200)) await Task.WhenAll(chunk.Select(e => bus.Publish(e, e.GetType(), cancel)));
            // On a busy machine the consumers may fall behind the accelerated clock: time waits for them, so every event is
            // handled on its own simulated day and the story is the same however fast the machine is.
            if (EventsHandled() < next)
            {
                clock.Hold();
                var caughtUp = DateTime.UtcNow.AddSeconds(60);
                while (EventsHandled() < next && DateTime.UtcNow < caughtUp) await Task.Delay(20, cancel);
                clock.Go();
            }
            if (DateTime.UtcNow - lastShown > TimeSpan.FromSeconds(0.25) || now >= end)
            {
                lastShown = DateTime.UtcNow;
                progress.Report(EventsHandled(), await ProgressAsync(store, now, start, days, cancel));
            }
            if (now >= end && next >= events.Count) break;
            await readers.ReadNewAsync(cancel);
            await Task.Delay(100, cancel);
        }

        // Let the consumers finish and the last due emails go out, then hold the scheduler so the story's numbers agree.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (EventsHandled() < events.Count && DateTime.UtcNow < deadline) await Task.Delay(100, cancel);
        await Task.Delay(TimeSpan.FromSeconds(2.5), cancel);
        var scheduler = await app.Services.GetRequiredService<Quartz.ISchedulerFactory>().GetScheduler(cancel);
        await scheduler.PauseAll(cancel);
        await Task.Delay(TimeSpan.FromSeconds(1.5), cancel); // a dispatch round under way finishes
        progress.Report(EventsHandled());
        progress.Done(await ProgressAsync(store, clock.GetUtcNow(), start, days, cancel));

        var report = await FunnelReport.ReadAsync(store, definition, clock.GetUtcNow(), cancel);
        var mail = Path.Combine(folder, "mail");
        var emails = Directory.Exists(mail) ? Directory.GetFiles(mail, "*.eml").Length : 0;
        var api = app.Services.GetRequiredService<ApiSettings>();
        Console.Out.WriteLine();
        Console.Out.Write(ReportCommand.Print(report, await store.ReadTimeInStageAsync(cancel)));
        // The sample plants a better variant (SampleLeads.PlantedLift); whether the demo's few leads can show it yet, the report says.
        Console.Out.Write(ReportCommand.Print(await ExperimentReport.ReadAsync(store, definition, clock.GetUtcNow(), cancel), report.MqlValue.Currency));
        Console.Out.WriteLine(string.Create(c, $"""

            Where to look next
              the emails:    {mail} ({emails} .eml files; open any with a mail program)
              the clicks:    {readers.ByPeople} by readers (emailClicked, scored), {readers.ByMachines} by link scanners (HEAD: recorded as machine clicks, not scored)
              the hand-off:  {sales.Valid} of {sales.Received} signed LeadHandedToSales webhooks verified by the demo's receiver ({sales.Url}); log: curl -H "X-Api-Key: …" {url}/api/webhooks/deliveries
              the dashboard: {url}/dashboard
              the funnel:    curl {url}/api/funnel
              experiments:   curl {url}/api/experiments
              one lead:      curl -H "X-Api-Key: $(cat {Path.Combine(folder, api.KeyFile.Length > 0 ? Path.GetFileName(api.KeyFile) : "nurture-api.key")})" {url}/api/leads/lead-00001
              the metrics:   {url}/metrics
              the database:  {database.Describe()}  (`report`, `simulate` with ConnectionStrings__Nurture="Data Source={Path.Combine(folder, "nurture-demo.db")}")
            """));
        if (exit) return 0;
        await scheduler.ResumeAll(cancel);
        Console.Out.WriteLine("The worker keeps running so you can look around. Ctrl+C stops it.");
        try
        {
            await Task.Delay(Timeout.Infinite, cancel);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C.
        }
        return 0;
    }

    private static void EnsureFree(string[] hostArgs)
    {
        var index = Array.IndexOf(hostArgs, "--urls");
        var urls = index >= 0 && index + 1 < hostArgs.Length ? hostArgs[index + 1]
            : hostArgs.FirstOrDefault(a => a.StartsWith("--urls=", StringComparison.Ordinal))?["--urls=".Length..]
            ?? Environment.GetEnvironmentVariable("ASPNETCORE_URLS") ?? WorkerHost.DefaultUrl;
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Uri.TryCreate(url.Replace("*", "localhost", StringComparison.Ordinal).Replace("+", "localhost", StringComparison.Ordinal), UriKind.Absolute, out var uri) || uri.Port == 0) continue;
            try
            {
                using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, uri.Port);
                listener.Start();
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new IOException($"Failed to bind to address {url}: address already in use.", e);
            }
        }
    }

    /// <summary>Where the story is, beside the events count: the simulated day and the funnel so far.</summary>
    private static async Task<string> ProgressAsync(LeadStore store, DateTimeOffset now, DateTimeOffset start, int days, CancellationToken cancel)
    {
        var funnel = await store.ReadFunnelAsync(cancel);
        var steps = await store.CountStepsAsync(cancel);
        var day = Math.Min(days, (int)Math.Ceiling((now - start).TotalDays));
        return string.Create(CultureInfo.InvariantCulture,
            $"day {day,3}/{days}  leads {funnel[0].Reached,4}  MQLs {funnel[1].Reached,4}  SQLs {funnel[3].Reached,4}  customers {funnel[4].Reached,4}  emails sent {steps.GetValueOrDefault("sent"),5}");
    }
}

/// <summary>
/// Simulated time: from <c>start</c> to <c>end</c> over <c>duration</c> of real time, then on at the real pace. It stands
/// still while held (the demo holds it while the consumers catch up).
/// </summary>
public sealed class DemoClock(DateTimeOffset start, DateTimeOffset end, TimeSpan duration) : TimeProvider
{
    private readonly global::System.Diagnostics.Stopwatch _running = global::System.Diagnostics.Stopwatch.StartNew();
    private readonly double _speed = (end - start).TotalSeconds / Math.Max(1, duration.TotalSeconds);

    private int _holds;

    /// <summary>Stops simulated time until every Hold has its Go.</summary>
    public void Hold()
    {
        lock (_running)
        {
            if (_holds++ == 0) _running.Stop();
        }
    }

    public void Go()
    {
        lock (_running)
        {
            if (--_holds == 0) _running.Start();
        }
    }

    public override DateTimeOffset GetUtcNow()
    {
        TimeSpan real;
        lock (_running) real = _running.Elapsed;
        var simulated = start + TimeSpan.FromSeconds(real.TotalSeconds * _speed);
        return simulated <= end ? simulated : end + (real - duration);
    }
}
