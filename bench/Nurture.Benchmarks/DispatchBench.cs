using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Dapper;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using Npgsql;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker;
using Nurture.Worker.Email;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Email;

namespace Nurture.Benchmarks;

/// <summary>
/// `dispatch`: in one run against one local counting SMTP sink (PIPELINING, loopback), the same number of emails sent by
/// (1) Nurture's dispatch from a PostgreSQL database of its own, (2) a plain MailKit loop over the same number of
/// connections with TCP_NODELAY (the baseline), (3) Quartz.NET with one persistent trigger per email on the same
/// PostgreSQL server (Quartz creates its tables); then Nurture again with 10,000, 100,000 and 1,000,000 steps pending. Prints ratios and a
/// Markdown block for bench/RESULTS.md.
/// Options: --emails N (10000) --connections C (2) --quartz-emails Q (2000) --pending 10000,100000,1000000.
/// PostgreSQL: NURTURE_BENCH_POSTGRES or NURTURE_TEST_POSTGRES (a server connection string; the benchmark creates and drops its databases).
/// </summary>
public static class DispatchBench
{
    /// <summary>Monday 2 March 2026, 09:30 in Berlin: inside the default send window.</summary>
    private static readonly DateTimeOffset Monday = new(2026, 3, 2, 8, 30, 0, TimeSpan.Zero);

    public static async Task<int> RunAsync(string[] args)
    {
        var emails = Option(args, "--emails", 10_000);
        var connections = Option(args, "--connections", 2);
        var quartzEmails = Option(args, "--quartz-emails", 2_000);
        var pending = (Value(args, "--pending") ?? "10000,100000,1000000").Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();
        var server = Environment.GetEnvironmentVariable("NURTURE_BENCH_POSTGRES") ?? Environment.GetEnvironmentVariable("NURTURE_TEST_POSTGRES")
            ?? "Host=127.0.0.1;Port=5432;Username=nurture;Password=nurture;Database=postgres";

        await using var sink = new PipeliningSmtpServer { KeepIds = false };
        Console.WriteLine($"dispatch benchmark: {emails} emails, {connections} SMTP connection(s), sink 127.0.0.1:{sink.Port} (PIPELINING), {Environment.ProcessorCount} cores");

        // Warmed up as Nurture is (its first round is not counted either). The loop still runs faster at the end of a run
        // than at its start (2,902 against 4,175/s after this warm-up), so the baseline is the mean of both.
        var warmLoop = await PlainLoopAsync(sink, Math.Min(emails, 2_000), connections);
        Console.WriteLine($"plain MailKit loop, warm-up (not counted): {warmLoop:F0}/s");
        var loop = await PlainLoopAsync(sink, emails, connections);
        Console.WriteLine($"plain MailKit loop, TCP_NODELAY: {loop:F0}/s");

        var database = $"nurture_bench_{Guid.NewGuid():N}"[..28];
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = database, MaxPoolSize = 50 }.ToString();
        var runs = new List<(int Pending, Run Run, double ClaimMs)>();
        double quartz;
        try
        {
            await using (var app = await StartWorkerAsync(connectionString, sink.Port, connections))
            {
                var store = app.Services.GetRequiredService<LeadStore>();
                await CaptureAsync(store, app.Services.GetRequiredService<Definition>(), connectionString, emails);
                var filled = emails;
                // One round unmeasured first: JIT, connection pools, SMTP sessions and prepared statements, so the first
                // level measured is not also the first run.
                await ResetAsync(connectionString);
                var warm = await DispatchAsync(app, sink, emails);
                Console.WriteLine($"Nurture dispatch, warm-up (not counted): {warm.Rate:F0}/s");
                // Up through the levels and back down (10,000, 100,000, 1,000,000, 1,000,000, 100,000, 10,000): each level
                // is measured once early and once late, so the machine's drift and the process warming up further weigh
                // on every level alike (one pass up made the first level the slowest in one run and the fastest in the next).
                var up = pending.Order().ToList();
                foreach (var level in up.Concat(Enumerable.Reverse(up)))
                {
                    await ResetAsync(connectionString);
                    if (level > filled) await FillAsync(connectionString, filled, level);
                    if (level < filled) await ShrinkAsync(connectionString, emails, level);
                    filled = Math.Max(emails, level);
                    var claimMs = await ClaimPlanAsync(connectionString);
                    var run = await DispatchAsync(app, sink, emails);
                    runs.Add((level, run, claimMs));
                    Console.WriteLine($"Nurture dispatch, {level:N0} pending: {run.Rate:F0}/s, claim {claimMs:F2} ms, {run.AllocatedPerEmail / 1024.0:F1} KiB allocated per email, heap after {run.HeapMiB:F0} MiB, working set {run.WorkingSetMiB:F0} MiB");
                }
            }
            var loopAgain = await PlainLoopAsync(sink, emails, connections);
            Console.WriteLine($"plain MailKit loop again: {loopAgain:F0}/s (the baseline is the mean of both)");
            loop = (loop + loopAgain) / 2;
            quartz = await DispatchQuartz.RunAsync(connectionString, sink, quartzEmails, connections);
            Console.WriteLine($"Quartz.NET, one persistent trigger per email: {quartz:F0}/s ({quartzEmails} emails)");
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(server);
            await admin.ExecuteAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        }

        // Each level's two runs together: their mean rate and claim time, and the larger memory figures.
        var levels = runs.GroupBy(r => r.Pending).OrderBy(g => g.Key).Select(g => (Pending: g.Key,
            Run: new Run(g.Average(r => r.Run.Rate), g.Average(r => r.Run.AllocatedPerEmail), g.Max(r => r.Run.HeapMiB), g.Max(r => r.Run.WorkingSetMiB)),
            ClaimMs: g.Average(r => r.ClaimMs), Rates: string.Join(" and ", g.Select(r => $"{r.Run.Rate:F0}")))).ToList();
        var first = levels[0].Run;
        Console.WriteLine();
        Console.WriteLine($"| run | emails/s | ratio |");
        Console.WriteLine($"| --- | ---: | ---: |");
        Console.WriteLine($"| plain MailKit loop, {connections} connections, TCP_NODELAY (baseline) | {loop:F0} | 1.00 |");
        Console.WriteLine($"| Nurture dispatch, {connections} connections, {levels[0].Pending:N0} pending | {first.Rate:F0} | {first.Rate / loop:F2} |");
        Console.WriteLine($"| Quartz.NET, one persistent trigger per email, {connections} connections | {quartz:F0} | {quartz / loop:F2} |");
        Console.WriteLine();
        Console.WriteLine($"Nurture / Quartz: {first.Rate / quartz:F1}×");
        Console.WriteLine();
        Console.WriteLine("| pending steps | claim (EXPLAIN ANALYZE) | emails/s (way up, way down) | mean | vs first | KiB allocated per email | heap after (MiB) | working set (MiB) |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (level, run, claim, rates) in levels)
        {
            Console.WriteLine($"| {level:N0} | {claim:F2} ms | {rates} | {run.Rate:F0} | {run.Rate / first.Rate:F2} | {run.AllocatedPerEmail / 1024.0:F1} | {run.HeapMiB:F0} | {run.WorkingSetMiB:F0} |");
        }
        return 0;
    }

    private sealed record Run(double Rate, double AllocatedPerEmail, double HeapMiB, double WorkingSetMiB);

    /// <summary>Messages like Nurture's: text and HTML parts of a few KiB, List-Unsubscribe, a Message-ID.</summary>
    internal static MimeMessage Message(int i)
    {
        var message = new MimeMessage { MessageId = $"plain.{i}@bench.example", Subject = "Welcome to Nurture!", Date = Monday };
        message.From.Add(new MailboxAddress("Nurture", "news@bench.example"));
        message.To.Add(new MailboxAddress("Anna Schmidt", $"lead-{i}@softwarehaus.example"));
        message.Headers.Add("List-Unsubscribe", $"<http://localhost:5080/unsubscribe/{Guid.NewGuid():N}>");
        var text = string.Concat(Enumerable.Repeat("Hi Anna, thanks for your interest in our software. ", 30));
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = $"<html><body><p>{text}</p></body></html>" }.ToMessageBody();
        return message;
    }

    /// <summary>Connects as Nurture does: our own socket with TCP_NODELAY, handed to MailKit.</summary>
    internal static async Task<SmtpClient> ConnectAsync(int port)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port);
        var client = new SmtpClient();
        await client.ConnectAsync(socket, "127.0.0.1", port, SecureSocketOptions.None);
        return client;
    }

    private static async Task<double> PlainLoopAsync(PipeliningSmtpServer sink, int emails, int connections)
    {
        var messages = Enumerable.Range(0, emails).Select(Message).ToList();
        var before = sink.AcceptedCount;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, connections).Select(c => Task.Run(async () =>
        {
            using var client = await ConnectAsync(sink.Port);
            for (var i = c; i < emails; i += connections) await client.SendAsync(messages[i]);
            await client.DisconnectAsync(quit: true);
        })));
        clock.Stop();
        return Check(sink.AcceptedCount - before, emails, "plain loop") / clock.Elapsed.TotalSeconds;
    }

    private static async Task<WebApplication> StartWorkerAsync(string connectionString, int smtpPort, int connections)
    {
        var folder = Directory.CreateTempSubdirectory("nurture-bench-").FullName;
        var settings = new Dictionary<string, string?>
        {
            ["Nurture:Database:Provider"] = "PostgreSql",
            ["ConnectionStrings:Nurture"] = connectionString,
            ["Nurture:Email:From"] = "Nurture <news@bench.example>",
            ["Nurture:Email:Smtp:Host"] = "127.0.0.1",
            ["Nurture:Email:Smtp:Port"] = smtpPort.ToString(CultureInfo.InvariantCulture),
            ["Nurture:Email:Smtp:UseStartTls"] = "false",
            ["Nurture:Email:Smtp:Connections"] = connections.ToString(CultureInfo.InvariantCulture),
            ["Nurture:Email:ReplyTo"] = "Vertrieb <sales@bench.example>",
            ["Nurture:Email:Footer:Company"] = "Nurture Bench GmbH",
            ["Nurture:Email:Footer:Address"] = "Musterstraße 1, 10115 Berlin, Deutschland",
            ["Nurture:Email:Footer:ImpressumUrl"] = "https://bench.example/impressum",
            ["Nurture:Email:UnsubscribeKey"] = "bench-unsubscribe-key-0123456789abcdef",
            ["Nurture:Api:Key"] = "bench-api-key-0123456789abcdef",
            ["Nurture:Schedule:Enabled"] = "false",
            ["Nurture:Metrics:RefreshSeconds"] = "3600",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        var app = WorkerHost.Build(["--urls", "http://127.0.0.1:0"], c => c.AddInMemoryCollection(settings), s => s.AddSingleton<TimeProvider>(new MondayClock()));
        app.Services.GetRequiredService<Database>().Migrate();
        await app.StartAsync();
        Directory.Delete(folder, recursive: true);
        return app;
    }

    /// <summary>
    /// N leads with their first step due now: one captured through the store as the worker would, then copied in SQL
    /// (the ingest path is not what this benchmark measures, and on a loaded machine it would take minutes).
    /// </summary>
    private static async Task CaptureAsync(LeadStore store, Definition definition, string connectionString, int leads)
    {
        var clock = Stopwatch.StartNew();
        using var services = Nurture.Worker.Leads.LeadServices.WithoutBus(store.Database, definition);
        await Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Nurture.Worker.Leads.LeadEventHandler>(services).HandleNowAsync([new LeadCaptured
        {
            EventId = Guid.NewGuid(), LeadId = "template-lead", OccurredAt = Monday.AddMinutes(-1), Email = "template-lead@softwarehaus.example",
            FirstName = "Anna", LastName = "Schmidt", Company = "Softwarehaus GmbH", Industry = "software", CompanySize = 50, Country = "DE",
            TimeZone = "Europe/Berlin", Language = "en", Source = "webinar", Consent = true,
        }], "bench", CancellationToken.None);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync("""
            INSERT INTO leads
            SELECT (jsonb_populate_record(NULL::leads, to_jsonb(l) || jsonb_build_object(
                'lead_id', 'lead-' || g, 'email', 'lead-' || g || '@softwarehaus.example', 'state', replace(l.state, 'template-lead', 'lead-' || g)))).*
            FROM leads l, generate_series(0, @leads - 1) AS g WHERE l.lead_id = 'template-lead';
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT 'lead-' || g, s.track, s.enrolment, s.step, s.template, s.due_at, 'pending', 0
            FROM nurture_steps s, generate_series(0, @leads - 1) AS g WHERE s.lead_id = 'template-lead';
            UPDATE nurture_steps SET status = 'cancelled' WHERE lead_id = 'template-lead';
            """, new { leads }, commandTimeout: 600);
        Console.WriteLine($"{leads:N0} leads with a step due ({clock.Elapsed.TotalSeconds:F1} s)");
    }

    /// <summary>The leads' first steps due again, as if never sent; what the last run scheduled after them removed.</summary>
    private static async Task ResetAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync("""
            DELETE FROM nurture_steps WHERE step > 0 AND lead_id LIKE 'lead-%';
            UPDATE nurture_steps SET status = 'pending', attempts = 0, claimed_by = NULL, claim_until = NULL, message_id = NULL, sent_at = NULL, last_error = NULL
            WHERE lead_id LIKE 'lead-%';
            DELETE FROM outbox;
            """, commandTimeout: 600);
        // Every table settled before each level: otherwise autovacuum takes the set-up's fresh leads or the last run's dead
        // outbox rows during a measured run (seen at 20:46 and 20:47 on 2026-12-07, in the runs that came out slow).
        await connection.ExecuteAsync("VACUUM ANALYZE", commandTimeout: 600);
    }

    /// <summary>Steps pending later (other leads, due over the coming weeks) until <paramref name="to"/> steps are pending.</summary>
    private static async Task FillAsync(string connectionString, int from, int to)
    {
        var clock = Stopwatch.StartNew();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync("""
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT 'later-' || g, 'software', 1, 0, 'software-welcome', @start + g * INTERVAL '2 seconds', 'pending', 0
            FROM generate_series(@from + 1, @to) AS g
            """, new { start = Monday.AddHours(1), from, to }, commandTimeout: 600);
        await connection.ExecuteAsync("VACUUM ANALYZE nurture_steps", commandTimeout: 600);
        Console.WriteLine($"{to:N0} steps pending ({clock.Elapsed.TotalSeconds:F1} s to insert)");
    }

    /// <summary>Back down to <paramref name="to"/> pending: the later steps above it go (they are numbered from <paramref name="emails"/> + 1 up).</summary>
    private static async Task ShrinkAsync(string connectionString, int emails, int to)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.ExecuteAsync("DELETE FROM nurture_steps WHERE lead_id LIKE 'later-%' AND CAST(substring(lead_id FROM 7) AS int) > @keep",
            new { keep = Math.Max(emails, to) }, commandTimeout: 600);
        await connection.ExecuteAsync("VACUUM ANALYZE nurture_steps", commandTimeout: 600);
        Console.WriteLine($"back to {to:N0} steps pending");
    }

    /// <summary>The claim's execution time as PostgreSQL measures it (EXPLAIN ANALYZE inside a transaction rolled back).</summary>
    private static async Task<double> ClaimPlanAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var plan = (await connection.QueryAsync<string>("EXPLAIN ANALYZE " + SqlDialect.For(DatabaseProvider.PostgreSql).ClaimDueSteps,
            new { Claimer = "plan", Now = Monday, Until = Monday.AddMinutes(5), Max = 50 }, transaction)).ToList();
        await transaction.RollbackAsync();
        var line = plan.Last(l => l.StartsWith("Execution Time", StringComparison.Ordinal));
        return double.Parse(line.Split(':')[1].Replace("ms", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);
    }

    private static async Task<Run> DispatchAsync(WebApplication app, PipeliningSmtpServer sink, int emails)
    {
        var dispatch = app.Services.GetRequiredService<NurtureDispatch>();
        var before = sink.AcceptedCount;
        GC.Collect();
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        await dispatch.DispatchAllDueAsync();
        clock.Stop();
        var perEmail = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)emails;
        var rate = Check(sink.AcceptedCount - before, emails, "Nurture dispatch") / clock.Elapsed.TotalSeconds;
        using var process = Process.GetCurrentProcess();
        return new Run(rate, perEmail, GC.GetTotalMemory(forceFullCollection: true) / 1048576.0, process.WorkingSet64 / 1048576.0);
    }

    internal static int Check(int accepted, int expected, string what)
    {
        if (accepted != expected) Console.WriteLine($"warning: {what}: the sink accepted {accepted} emails, {expected} expected");
        return accepted;
    }

    private static int Option(string[] args, string name, int fallback) => Value(args, name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    private static string? Value(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>Monday morning in Berlin (inside the send window), moving with real time so leases and lags stay real.</summary>
    private sealed class MondayClock : TimeProvider
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();

        public override DateTimeOffset GetUtcNow() => Monday + _since.Elapsed;
    }
}
