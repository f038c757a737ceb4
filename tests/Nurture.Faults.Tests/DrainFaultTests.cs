using System.Diagnostics;
using System.Text;
using Nurture.Contracts;
using Xunit.Abstractions;

namespace Nurture.Faults.Tests;

/// <summary>
/// The worker drains events pre-loaded into its RabbitMQ queue (plain JSON, as a publisher that is not .NET sends them)
/// into PostgreSQL while something breaks: the worker is killed, the broker or the database stops. Afterwards every
/// event is stored once, nothing is dead-lettered, and the leads are what `replay` of the same events gives.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class When_the_worker_drains_through_faults(FaultRig rig, ITestOutputHelper output)
{
    private static readonly TimeSpan DrainLimit = TimeSpan.FromMinutes(8);

    [SkippableFact]
    public async Task Should_store_every_event_once_as_replay_does_after_kill_9_twice_during_a_drain_of_50000()
    {
        rig.Require();
        await using var drain = await Drain.PrepareAsync(rig, "kill", 50_000);
        var kills = new List<string>();

        foreach (var at in new[] { 10_000, 30_000 })
        {
            await drain.WaitStoredAsync(at);
            var stored = await drain.StoredAsync();
            await drain.Worker!.KillAsync();
            await drain.Worker.DisposeAsync();
            kills.Add($"{stored:N0}");
            drain.StartWorker();
        }
        var figures = await drain.FinishAsync();

        rig.Report(output, "kill -9 twice during a drain of 50,000 events", [$"killed at {string.Join(" and ", kills)} events stored", .. figures.Lines]);
        figures.AssertClean();
    }

    [SkippableFact]
    public async Task Should_lose_nothing_and_dead_letter_nothing_when_postgresql_stops_for_60_s_during_a_drain_and_say_not_ready_meanwhile()
    {
        rig.Require();
        await using var drain = await Drain.PrepareAsync(rig, "pgstop", 6_000);

        var outage = await drain.OutageAsync(1_500, rig.Postgres!.StopAsync, () => rig.Postgres!.StartAsync());
        var figures = await drain.FinishAsync();

        rig.Report(output, "PostgreSQL stopped for 60 s during a drain of 6,000 events", [.. outage.Lines, .. figures.Lines]);
        outage.AssertReadiness();
        figures.AssertClean();
    }

    [SkippableFact]
    public async Task Should_lose_nothing_and_dead_letter_nothing_when_rabbitmq_stops_for_60_s_and_restarts_during_a_drain_and_say_not_ready_meanwhile()
    {
        rig.Require();
        await using var drain = await Drain.PrepareAsync(rig, "mqstop", 6_000);

        var outage = await drain.OutageAsync(1_500, rig.RabbitMq!.StopAsync, () => rig.RabbitMq!.StartAsync());
        var figures = await drain.FinishAsync();

        rig.Report(output, "RabbitMQ stopped for 60 s and started again during a drain of 6,000 events", [.. outage.Lines, .. figures.Lines]);
        outage.AssertReadiness();
        figures.AssertClean();
    }

    /// <summary>What an outage looked like from /health/ready.</summary>
    private sealed record Outage(TimeSpan Length, double? FirstNotReady, int ReadyAnswersAfterThat, int Polls, double? BackToReady, string Before, string WorkerLines)
    {
        public IEnumerable<string> Lines =>
        [
            $"outage {Length.TotalSeconds:N0} s; /health/ready first 503 {FirstNotReady:N1} s after the stop, then {Polls - ReadyAnswersAfterThat} of {Polls} polls 503 until the restart",
            $"/health/ready 200 again {BackToReady:N1} s after the server was back",
        ];

        public void AssertReadiness()
        {
            Assert.True(FirstNotReady is not null and <= 15,
                $"/health/ready did not answer 503 within 15 s of the stop (first: {FirstNotReady}); before that (s: status): {Before}\nThe worker's last lines:\n{WorkerLines}");
            Assert.True(ReadyAnswersAfterThat == 0, $"/health/ready answered 200 {ReadyAnswersAfterThat} times while the server was stopped");
            Assert.True(BackToReady is not null, "/health/ready did not answer 200 again after the server came back");
        }
    }

    private sealed record Figures(int Count, int Stored, long DeadLettered, long Rejected, int MissingLeads, int DifferingLeads, string Examples, TimeSpan Took)
    {
        public IEnumerable<string> Lines =>
        [
            $"{Stored:N0} of {Count:N0} events stored ({Count - Stored} lost), {DeadLettered} dead-lettered, {Rejected} in rejected_events",
            $"against replay of the same events: {MissingLeads} leads missing, {DifferingLeads} with another stage or score (applied twice or lost){(Examples.Length > 0 ? ", e.g. " + Examples : "")}",
            $"drained in {Took.TotalSeconds:N0} s from the first start ({Count / Took.TotalSeconds:N0} events/s overall)",
        ];

        public void AssertClean()
        {
            Assert.Equal(Count, Stored);
            Assert.Equal(0, DeadLettered);
            Assert.Equal(0, Rejected);
            Assert.True(MissingLeads == 0 && DifferingLeads == 0, $"{MissingLeads} leads missing and {DifferingLeads} differing from replay, e.g. {Examples}");
        }
    }

    /// <summary>One scenario's database, queue, events and worker process.</summary>
    private sealed class Drain : IAsyncDisposable
    {
        private readonly FaultRig _rig;
        private readonly string _folder;
        private readonly List<string> _arguments;
        private readonly Dictionary<string, string> _environment;
        private Stopwatch _clock = new();

        private Drain(FaultRig rig, string name, string database, IReadOnlyList<NurtureMessage> events)
        {
            _rig = rig;
            Database = database;
            Events = events;
            Queue = $"nurture-faults-{name}";
            var exchange = $"nurture.faults.{name}";
            Exchange = exchange;
            _folder = rig.NewFolder(name);
            _arguments =
            [
                "--Nurture:Bus:Transport=RabbitMq",
                $"--Nurture:Bus:Queue={Queue}",
                $"--Nurture:Bus:Exchange={exchange}",
                // Only the ingest path is under test: no nurture emails, no jobs.
                "--Nurture:Schedule:Enabled=false",
                $"--Nurture:Email:PickupDirectory={Path.Combine(_folder, "mail")}",
            ];
            _environment = FaultRig.WorkerEnvironment(database);
            _environment["ConnectionStrings__RabbitMq"] = rig.RabbitMq!.Amqp.ToString();
        }

        public string Database { get; }
        public string Queue { get; }
        public string Exchange { get; }
        public IReadOnlyList<NurtureMessage> Events { get; }
        public WorkerProcess? Worker { get; private set; }

        /// <summary>
        /// Runs the worker once so that it migrates its database and declares its queue and exchange, stops it, and
        /// pre-loads the events; then starts it again to drain them.
        /// </summary>
        public static async Task<Drain> PrepareAsync(FaultRig rig, string name, int count)
        {
            var database = await rig.NewDatabaseAsync(name);
            var drain = new Drain(rig, name, database, FaultRig.Events(count));
            drain.StartWorker();
            await drain.Worker!.WaitReadyAsync(TimeSpan.FromMinutes(3));
            await drain.Worker.StopAsync();
            await rig.PublishAsync(drain.Exchange, drain.Events.Select(e => Encoding.UTF8.GetBytes(EventJson.Write(e))));
            await Eventually.Until(() => rig.QueueCountAsync(drain.Queue), n => n == count, TimeSpan.FromMinutes(1), $"{count} events in {drain.Queue}");
            drain._clock = Stopwatch.StartNew();
            drain.StartWorker();
            return drain;
        }

        public void StartWorker() => Worker = WorkerProcess.Start(_arguments, _environment, _folder);

        public Task<long> StoredAsync() => FaultRig.CountAsync(Database, "SELECT COUNT(*) FROM lead_events");

        public Task<long> WaitStoredAsync(long count) =>
            Eventually.Until(StoredAsync, n => n >= count, DrainLimit, $"{count:N0} events stored", Worker!.ThrowIfExited);

        /// <summary>
        /// Once <paramref name="after"/> events are stored, stops a server for 60 s, polling /health/ready all along,
        /// starts it again and waits until the worker says it is ready.
        /// </summary>
        public async Task<Outage> OutageAsync(long after, Func<Task> stop, Func<Task> start)
        {
            await WaitStoredAsync(after);
            var length = TimeSpan.FromSeconds(60);
            await stop();
            var down = Stopwatch.StartNew();
            double? firstNotReady = null;
            var before = new List<string>();
            var readyAfterThat = 0;
            var polls = 0;
            while (down.Elapsed < length)
            {
                Worker!.ThrowIfExited();
                var status = await Worker.ReadyAsync();
                if (firstNotReady is null)
                {
                    if (status == 503) firstNotReady = down.Elapsed.TotalSeconds;
                    else before.Add($"{down.Elapsed.TotalSeconds:N1}: {status}");
                }
                else
                {
                    polls++;
                    if (status == 200) readyAfterThat++;
                }
                await Task.Delay(250);
            }
            await start();
            var outage = down.Elapsed;
            var back = Stopwatch.StartNew();
            double? backToReady = null;
            while (back.Elapsed < TimeSpan.FromMinutes(3))
            {
                Worker!.ThrowIfExited();
                if (await Worker.ReadyAsync() == 200)
                {
                    backToReady = back.Elapsed.TotalSeconds;
                    break;
                }
                await Task.Delay(100);
            }
            return new Outage(outage, firstNotReady, readyAfterThat, polls, backToReady, string.Join(", ", before), Worker!.Output());
        }

        /// <summary>Waits until every event is stored and the queue is empty, then counts and compares with replay.</summary>
        public async Task<Figures> FinishAsync()
        {
            try
            {
                return await CountAsync();
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}\nThe worker's last lines:\n{Worker!.Output()}", e);
            }
        }

        private async Task<Figures> CountAsync()
        {
            var stored = await Eventually.Until(StoredAsync, n => n >= Events.Count, DrainLimit, $"all {Events.Count:N0} events stored", Worker!.ThrowIfExited);
            var took = _clock.Elapsed;
            await Eventually.Until(() => _rig.QueueCountAsync(Queue), n => n == 0, TimeSpan.FromMinutes(2), $"{Queue} empty");
            // Redelivered copies of stored events are acknowledged as duplicates; let any still in flight settle.
            await Eventually.Until(() => FaultRig.CountAsync(Database, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0, TimeSpan.FromMinutes(3), "the outbox published");
            var deadLettered = await _rig.QueueCountAsync(Queue + "_error") + await _rig.QueueCountAsync(Queue + "_skipped");
            var rejected = await FaultRig.CountAsync(Database, "SELECT COUNT(*) FROM rejected_events");
            var (missing, differing, examples) = await FaultRig.CompareWithReplayAsync(Database, Events);
            return new Figures(Events.Count, (int)stored, deadLettered, rejected, missing, differing, examples, took);
        }

        public async ValueTask DisposeAsync()
        {
            if (Worker is not null) await Worker.DisposeAsync();
            // A scenario that failed half-way must not leave its server stopped for the next one.
            if (_rig.Postgres is { Running: false }) await _rig.Postgres.StartAsync();
            if (_rig.RabbitMq is { Running: false }) await _rig.RabbitMq.StartAsync();
        }
    }
}
