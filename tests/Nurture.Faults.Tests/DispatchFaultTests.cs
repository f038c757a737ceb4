using System.Diagnostics;
using System.Net;
using System.Text;
using Nurture.Contracts;
using Nurture.Worker.Tests.Email;
using Xunit.Abstractions;

namespace Nurture.Faults.Tests;

/// <summary>
/// The worker sends a backlog of nurture emails (one welcome email for each of a few thousand leads posted to its API)
/// to a counting SMTP sink on loopback, which counts each Message-ID it accepts, while the sink stops or the worker is
/// killed. Every email arrives; copies are at most one per SMTP connection; after an outage sending resumes within
/// seconds of the server answering again.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class When_the_worker_dispatches_through_faults(FaultRig rig, ITestOutputHelper output)
{
    private const int Connections = 2;
    private static readonly TimeSpan SendLimit = TimeSpan.FromMinutes(5);

    [SkippableFact]
    public async Task Should_send_the_backlog_again_within_10_s_of_the_smtp_server_answering_after_a_30_s_outage()
    {
        rig.Require();
        await using var sink = new PipeliningSmtpServer();
        await using var dispatch = await Dispatch.StartAsync(rig, "smtpstop", sink, leads: 3_000);

        await Eventually.Until(() => Task.FromResult(sink.AcceptedCount), n => n >= 200, SendLimit, "200 emails accepted", dispatch.Worker.ThrowIfExited);
        await sink.StopAsync();
        var before = sink.AcceptedCount;
        var down = Stopwatch.StartNew();
        // The outage itself: 30 s with the port closed, the worker left to find out.
        while (down.Elapsed < TimeSpan.FromSeconds(30))
        {
            dispatch.Worker.ThrowIfExited();
            await Task.Delay(250);
        }
        sink.Start();
        var back = Stopwatch.StartNew();
        await Eventually.Until(() => Task.FromResult(sink.AcceptedCount), n => n > before, SendLimit, "the first email after the outage", dispatch.Worker.ThrowIfExited);
        var resumed = back.Elapsed;
        await Eventually.Until(() => Task.FromResult(sink.Accepted.Count), n => n >= dispatch.Leads, SendLimit, $"{dispatch.Leads} different emails accepted", dispatch.Worker.ThrowIfExited);
        var copies = sink.AcceptedCount - sink.Accepted.Count;

        rig.Report(output, "SMTP server stopped for 30 s during dispatch", [
            $"{dispatch.Leads:N0} emails due, {Connections} SMTP connections; the sink stopped after {before:N0} were accepted",
            $"first email accepted {resumed.TotalSeconds:N1} s after the server answered again",
            $"every email arrived: {sink.Accepted.Count:N0} Message-IDs, {copies} accepted twice (at most {Connections})",
        ]);
        Assert.True(resumed <= TimeSpan.FromSeconds(10), $"sending resumed {resumed.TotalSeconds:N1} s after the server answered again (at most 10 s)");
        Assert.True(copies <= Connections, $"{copies} emails were accepted twice (at most {Connections})");
    }

    [SkippableFact]
    public async Task Should_send_at_most_one_copy_per_smtp_connection_after_kill_9_during_dispatch()
    {
        rig.Require();
        await using var sink = new PipeliningSmtpServer();
        await using var dispatch = await Dispatch.StartAsync(rig, "smtpkill", sink, leads: 3_000);

        var killedAt = await Eventually.Until(() => Task.FromResult(sink.AcceptedCount), n => n >= 300, SendLimit, "300 emails accepted", dispatch.Worker.ThrowIfExited);
        await dispatch.Worker.KillAsync();
        killedAt = sink.AcceptedCount;
        var restart = Stopwatch.StartNew();
        await dispatch.RestartAsync();
        await Eventually.Until(() => Task.FromResult(sink.Accepted.Count), n => n >= dispatch.Leads, SendLimit, $"{dispatch.Leads} different emails accepted", dispatch.Worker.ThrowIfExited);
        var copies = sink.AcceptedCount - sink.Accepted.Count;
        var twice = sink.Accepted.Where(a => a.Value > 1).Select(a => $"{a.Key} ×{a.Value}").Take(5).ToList();

        rig.Report(output, "kill -9 during dispatch", [
            $"{dispatch.Leads:N0} emails due, {Connections} SMTP connections; killed after {killedAt:N0} were accepted",
            $"every email arrived {restart.Elapsed.TotalSeconds:N0} s after the restart (claims of the killed worker come back after Email:LeaseSeconds = 20 s)",
            $"{copies} accepted twice (same Message-ID; at most {Connections}){(twice.Count > 0 ? ": " + string.Join(", ", twice) : "")}",
        ]);
        Assert.True(copies <= Connections, $"{copies} emails were accepted twice (at most {Connections}): {string.Join(", ", twice)}");
    }

    /// <summary>A worker on the private PostgreSQL with the in-memory bus, sending to the sink; leads posted to its API.</summary>
    private sealed class Dispatch : IAsyncDisposable
    {
        private readonly List<string> _arguments;
        private readonly Dictionary<string, string> _environment;
        private readonly string _folder;

        private Dispatch(List<string> arguments, Dictionary<string, string> environment, string folder, int leads)
        {
            _arguments = arguments;
            _environment = environment;
            _folder = folder;
            Leads = leads;
            Worker = WorkerProcess.Start(_arguments, _environment, _folder);
        }

        public int Leads { get; }
        public WorkerProcess Worker { get; private set; }

        public static async Task<Dispatch> StartAsync(FaultRig rig, string name, PipeliningSmtpServer sink, int leads)
        {
            var database = await rig.NewDatabaseAsync(name);
            var environment = FaultRig.WorkerEnvironment(database);
            List<string> arguments =
            [
                "--Nurture:Bus:Transport=InMemory",
                "--Nurture:Email:Smtp:Host=127.0.0.1",
                $"--Nurture:Email:Smtp:Port={sink.Port}",
                "--Nurture:Email:Smtp:UseStartTls=false",
                $"--Nurture:Email:Smtp:Connections={Connections}",
                "--Nurture:Email:From=Nurture <nurture@faults.example>",
                "--Nurture:Email:ReplyTo=sales@faults.example",
                "--Nurture:Email:Footer:Company=Faults GmbH",
                "--Nurture:Email:Footer:Address=Teststraße 1, 10115 Berlin",
                "--Nurture:Email:Footer:ImpressumUrl=https://faults.example/impressum",
                "--Nurture:Email:DispatchSeconds=1",
                // A killed worker's claims come back after this long.
                "--Nurture:Email:LeaseSeconds=20",
                // Whatever the hour and the weekday the suite runs at: the send window is always open.
                .. Enumerable.Range(0, 7).Select(d => $"--Nurture:Definition:Nurture:SendWindow:Days:{d}={(DayOfWeek)d}"),
                "--Nurture:Definition:Nurture:SendWindow:StartHour=0",
                "--Nurture:Definition:Nurture:SendWindow:EndHour=24",
            ];
            var dispatch = new Dispatch(arguments, environment, rig.NewFolder(name), leads);
            await dispatch.Worker.WaitReadyAsync(TimeSpan.FromMinutes(3));
            await dispatch.PostLeadsAsync();
            return dispatch;
        }

        /// <summary>Leads captured a minute ago with consent: each has its welcome email due now.</summary>
        private async Task PostLeadsAsync()
        {
            var now = DateTimeOffset.UtcNow.AddMinutes(-1);
            var lines = Enumerable.Range(0, Leads).Select(i => EventJson.Write(new LeadCaptured
            {
                EventId = Guid.NewGuid(), LeadId = $"lead-{i:D5}", OccurredAt = now, Email = $"lead-{i:D5}@faults.example", FirstName = "Anna",
                Source = "webinar", Consent = true, Industry = "software", Language = i % 2 == 0 ? "de" : "en",
            }));
            using var content = new StringContent(string.Join('\n', lines), Encoding.UTF8, "application/x-ndjson");
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/events") { Content = content };
            request.Headers.Add("X-Api-Key", FaultRig.ApiKey);
            using var http = new HttpClient { BaseAddress = Worker.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
            using var response = await http.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"POST /api/events: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        public async Task RestartAsync()
        {
            await Worker.DisposeAsync();
            Worker = WorkerProcess.Start(_arguments, _environment, _folder);
            await Worker.WaitReadyAsync(TimeSpan.FromMinutes(3));
        }

        public async ValueTask DisposeAsync() => await Worker.DisposeAsync();
    }
}
