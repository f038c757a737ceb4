using System.Diagnostics;
using Dapper;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Nurture.Contracts;
using RabbitMQ.Client;

namespace Nurture.Benchmarks;

/// <summary>
/// `pipeline [--events 50000] [--warmup 600] [--settle] [--seconds 20] [--rate R] [--latency-only] [--worker PATH]`: in one run, on the same RabbitMQ and
/// PostgreSQL, N plain-JSON events pre-loaded into a queue are drained by (a) a MassTransit consumer that does nothing,
/// (b) a MassTransit batch consumer (100 a batch) that inserts each event with Dapper in one transaction per batch, and
/// (c) the Nurture worker, run as a process. Then publish→stored latency at half of (c)'s rate, on a fresh worker, measured
/// from a benchmark process without tiered compilation.
/// </summary>
public static class PipelineBenchmark
{
    private static readonly TimeSpan DrainLimit = TimeSpan.FromMinutes(10);

    public static async Task<int> RunAsync(string[] args)
    {
        // The latency is measured from a process of its own that does not recompile its code while it runs (see QuietAsync).
        if (args.Contains("--latency-only") && Environment.GetEnvironmentVariable(NoTiering) != "0") return await QuietAsync(args);
        var count = PipelineServers.Option(args, "--events", 50_000);
        var warmup = PipelineServers.Option(args, "--warmup", 600);
        var seconds = PipelineServers.Option(args, "--seconds", 20);
        var dll = PipelineServers.WorkerDll(args);
        var events = PipelineServers.Events(count);
        var bodies = events.Select(PipelineServers.Plain).ToList();
        Console.WriteLine($"pipeline: {count:N0} events, run {PipelineServers.RunId}, {DateTimeOffset.UtcNow:u}");
        Console.WriteLine($"machine: {PipelineServers.Machine()}");
        Console.WriteLine($"worker: {dll}");

        await using var broker = await BenchBroker.ConnectAsync();
        if (args.Contains("--latency-only"))
        {
            if (!args.Contains("--rate")) throw new ArgumentException("--latency-only: give the rate too, e.g. --latency-only --rate 150.");
            await LatencyAsync(broker, dll, events, warmup, PipelineServers.Option(args, "--rate", 1), seconds, PipelineServers.TextOption(args, "--because") ?? "--rate", args.Contains("--settle"));
            return 0;
        }
        if (args.Contains("--worker-only"))
        {
            // For profiling the worker's drain alone (e.g. with DOTNET_EnableEventPipe in the environment).
            var alone = await DrainWorkerAsync(broker, dll, bodies);
            Console.WriteLine($"(c) Nurture worker (process)            {PipelineServers.Rate(alone.Rate)}  ({alone})");
            return 0;
        }
        var noop = await DrainNoOpAsync(broker, bodies);
        Console.WriteLine($"(a) no-op MassTransit consumer          {PipelineServers.Rate(noop.Rate)}  ({noop})");
        var insert = await DrainInsertAsync(broker, bodies);
        Console.WriteLine($"(b) MassTransit batch + Dapper insert   {PipelineServers.Rate(insert.Rate)}  ({insert})");
        var worker = await DrainWorkerAsync(broker, dll, bodies);
        Console.WriteLine($"(c) Nurture worker (process)            {PipelineServers.Rate(worker.Rate)}  ({worker})");
        Console.WriteLine($"c/a {worker.Rate / noop.Rate:P1}   c/b {worker.Rate / insert.Rate:P1}");

        var rate = PipelineServers.Option(args, "--rate", Math.Max(1, (int)(worker.Rate / 2)));
        string[] latency =
        [
            "--latency-only", "--events", $"{count}", "--warmup", $"{warmup}", "--seconds", $"{seconds}", "--rate", $"{rate}",
            "--because", args.Contains("--rate") ? "--rate" : "half of c", "--worker", dll, .. args.Contains("--settle") ? ["--settle"] : Array.Empty<string>(),
        ];
        return await QuietAsync(latency);
    }

    private const string NoTiering = "DOTNET_TieredCompilation";

    /// <summary>
    /// Runs `pipeline` with these arguments in a new benchmark process without tiered compilation, as the worker runs.
    /// This process publishes and polls while the worker stores; with tiering on, .NET recompiled the publisher's and the
    /// poller's code in the background during the first measured seconds, on the two cores the worker and PostgreSQL
    /// need, and the benchmark measured its own recompiling: p99 after warm-up 109–223 ms in seven runs, against
    /// 77–97 ms in four runs with tiering off, alternated (bench/RESULTS.md). The drains stay in this process at .NET's
    /// defaults, as an application on MassTransit would run.
    /// </summary>
    private static async Task<int> QuietAsync(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false };
        start.ArgumentList.Add(typeof(PipelineBenchmark).Assembly.Location);
        start.ArgumentList.Add("pipeline");
        foreach (var argument in args) start.ArgumentList.Add(argument);
        start.Environment[NoTiering] = "0";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the latency benchmark's process.");
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

    /// <summary>How fast a queue of N events emptied: from the first message taken to the last one done.</summary>
    private sealed record Drain(int Events, TimeSpan Time, string Detail)
    {
        public double Rate => Events / Time.TotalSeconds;
        public override string ToString() => $"{Events:N0} in {Time.TotalSeconds:N1} s{Detail}";
    }

    /// <summary>The plain JSON as MassTransit reads it (raw JSON, any type), with only what the baselines need.</summary>
    public sealed record PipelineEvent(string Type, Guid EventId, string? LeadId, DateTimeOffset OccurredAt);

    /// <summary>Counts what the consumers finished and notes when the first arrived.</summary>
    public sealed class DrainCounter(int expected)
    {
        private long _done;
        private long _first;
        public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long FirstTicks => Interlocked.Read(ref _first);
        public long LastTicks { get; private set; }

        public void Started() => Interlocked.CompareExchange(ref _first, Stopwatch.GetTimestamp(), 0);

        public void Done(int n)
        {
            if (Interlocked.Add(ref _done, n) < expected) return;
            LastTicks = Stopwatch.GetTimestamp();
            Finished.TrySetResult();
        }

        public long Count => Interlocked.Read(ref _done);
    }

    public sealed class NoOpConsumer(DrainCounter counter) : IConsumer<PipelineEvent>
    {
        public Task Consume(ConsumeContext<PipelineEvent> context)
        {
            counter.Started();
            counter.Done(1);
            return Task.CompletedTask;
        }
    }

    public sealed class InsertConsumer(DrainCounter counter, NpgsqlDataSource database) : IConsumer<Batch<PipelineEvent>>
    {
        public const string Table = """
            CREATE TABLE events (
                event_id    UUID NOT NULL PRIMARY KEY,
                lead_id     TEXT NULL,
                type        TEXT NOT NULL,
                occurred_at TIMESTAMPTZ NOT NULL,
                received_at TIMESTAMPTZ NOT NULL,
                payload     TEXT NOT NULL)
            """;

        private const string Insert = """
            INSERT INTO events (event_id, lead_id, type, occurred_at, received_at, payload)
            VALUES (@EventId, @LeadId, @Type, @OccurredAt, @ReceivedAt, @Payload)
            """;

        public async Task Consume(ConsumeContext<Batch<PipelineEvent>> context)
        {
            counter.Started();
            var now = DateTimeOffset.UtcNow;
            var rows = context.Message.Select(m => new
            {
                m.Message.EventId, m.Message.LeadId, m.Message.Type, m.Message.OccurredAt, ReceivedAt = now,
                Payload = m.ReceiveContext.Body.GetString(),
            }).ToList();
            await using var connection = await database.OpenConnectionAsync(context.CancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(context.CancellationToken);
            await connection.ExecuteAsync(Insert, rows, transaction);
            await transaction.CommitAsync(context.CancellationToken);
            counter.Done(rows.Count);
        }
    }

    private static async Task<Drain> DrainNoOpAsync(BenchBroker broker, List<byte[]> bodies)
    {
        var queue = broker.Own($"nurture-bench-{PipelineServers.RunId}-noop");
        await broker.DeclareQueueAsync(queue);
        await broker.PublishConfirmedAsync("", queue, bodies);
        return await DrainInProcessAsync(broker, queue, bodies.Count, "", x => x.AddConsumer<NoOpConsumer>(), _ => { });
    }

    private static async Task<Drain> DrainInsertAsync(BenchBroker broker, List<byte[]> bodies)
    {
        await using var database = await BenchDatabase.CreateAsync("insert");
        await using var dataSource = NpgsqlDataSource.Create(database.ConnectionString);
        await using (var connection = await dataSource.OpenConnectionAsync()) await connection.ExecuteAsync(InsertConsumer.Table);
        var queue = broker.Own($"nurture-bench-{PipelineServers.RunId}-insert");
        await broker.DeclareQueueAsync(queue);
        await broker.PublishConfirmedAsync("", queue, bodies);
        var drain = await DrainInProcessAsync(broker, queue, bodies.Count, "", x => x.AddConsumer<InsertConsumer>(c => c.Options<BatchOptions>(o => o
            .SetMessageLimit(100)
            .SetTimeLimit(TimeSpan.FromMilliseconds(100))
            .SetConcurrencyLimit(2))), s => s.AddSingleton(dataSource));
        var stored = await database.CountAsync("SELECT COUNT(*) FROM events");
        return drain with { Detail = $", {stored:N0} rows" };
    }

    /// <summary>A MassTransit 8.5 bus in this process, the endpoint set up as the worker's defaults (prefetch 200).</summary>
    private static async Task<Drain> DrainInProcessAsync(
        BenchBroker broker, string queue, int count, string detail, Action<IBusRegistrationConfigurator> consumers, Action<IServiceCollection> services)
    {
        var counter = new DrainCounter(count);
        var collection = new ServiceCollection().AddLogging().AddSingleton(counter);
        services(collection);
        collection.AddMassTransit(x =>
        {
            consumers(x);
            x.UsingRabbitMq((context, bus) =>
            {
                bus.Host(PipelineServers.RabbitMq);
                bus.ReceiveEndpoint(queue, e =>
                {
                    e.PrefetchCount = 200;
                    e.ConcurrentMessageLimit = 200;
                    e.ConfigureConsumeTopology = false;
                    e.UseRawJsonDeserializer(RawSerializerOptions.AnyMessageType, isDefault: true);
                    e.ConfigureConsumers(context);
                });
            });
        });
        await using var provider = collection.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync();
        try
        {
            await counter.Finished.Task.WaitAsync(DrainLimit);
        }
        catch (TimeoutException)
        {
            Console.WriteLine($"    {queue}: only {counter.Count:N0} of {count:N0} within {DrainLimit.TotalMinutes} min");
            throw;
        }
        finally
        {
            await bus.StopAsync();
        }
        var remaining = await broker.ReadyAsync(queue);
        return new Drain(count, Stopwatch.GetElapsedTime(counter.FirstTicks, counter.LastTicks), $"{detail}, {remaining} left in the queue");
    }

    /// <summary>The worker's settings for one run; the secrets go in its environment, not on its command line.</summary>
    private static (List<string> Arguments, Dictionary<string, string> Environment) WorkerSettings(BenchDatabase database, string queue, string exchange, int port, string folder) =>
        ([
            $"--urls=http://127.0.0.1:{port}",
            "--Nurture:Database:Provider=PostgreSql",
            "--Nurture:Bus:Transport=RabbitMq",
            $"--Nurture:Bus:Queue={queue}",
            $"--Nurture:Bus:Exchange={exchange}",
            $"--Nurture:Email:PickupDirectory={Path.Combine(folder, "mail")}",
        ],
        new()
        {
            ["ConnectionStrings__Nurture"] = database.ConnectionString,
            ["ConnectionStrings__RabbitMq"] = PipelineServers.RabbitMq.ToString(),
            ["Nurture__Api__Key"] = Guid.NewGuid().ToString("N"),
            ["Nurture__Email__UnsubscribeKey"] = Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N"),
        });

    /// <summary>
    /// Starts the worker once so that it migrates its database and declares its own queue and exchange, stops it,
    /// pre-loads the events into its exchange as plain JSON, starts it again and waits until the queue is empty and
    /// every event has its row in lead_events.
    /// </summary>
    private static async Task<Drain> DrainWorkerAsync(BenchBroker broker, string dll, List<byte[]> bodies)
    {
        await using var database = await BenchDatabase.CreateAsync("worker");
        var queue = broker.Own($"nurture-bench-{PipelineServers.RunId}-worker");
        var exchange = $"nurture.bench.{PipelineServers.RunId}.worker";
        broker.OwnExchange(exchange);
        var folder = Path.Combine(Path.GetTempPath(), $"nurture-bench-{PipelineServers.RunId}-worker");
        var port = PipelineServers.FreePort();
        var (arguments, environment) = WorkerSettings(database, queue, exchange, port, folder);

        await using (var once = WorkerProcess.Start(dll, arguments, environment, folder))
        {
            await once.WaitReadyAsync(port, TimeSpan.FromMinutes(2));
        }
        await broker.PublishConfirmedAsync(exchange, "", bodies);
        var loaded = await broker.ReadyAsync(queue);
        if (loaded != bodies.Count) throw new InvalidOperationException($"{queue} holds {loaded} messages, not {bodies.Count}.");

        var started = Stopwatch.GetTimestamp();
        await using var worker = WorkerProcess.Start(dll, arguments, environment, folder);
        long first = 0;
        var ready = loaded;
        while (Stopwatch.GetElapsedTime(started) < DrainLimit)
        {
            if (worker.HasExited) throw new InvalidOperationException($"The worker stopped with exit code {worker.ExitCode}:\n{worker.Output()}");
            ready = await broker.ReadyAsync(queue);
            if (first == 0 && ready < loaded) first = Stopwatch.GetTimestamp();
            // A count scans the whole table on the server the worker uses: only once the queue has handed everything over
            // (polling it all along cost PostgreSQL 1.3–2.4 s of CPU in a drain of 50,000).
            if (ready == 0 && await database.CountAsync("SELECT COUNT(*) FROM lead_events") >= bodies.Count) break;
            await Task.Delay(50);
        }
        var end = Stopwatch.GetTimestamp();
        var stored = await database.CountAsync("SELECT COUNT(*) FROM lead_events");
        var cpu = worker.ProcessorTime;
        var detail = $", {Stopwatch.GetElapsedTime(started, first).TotalSeconds:N1} s from process start to the first taken, "
            + $"worker CPU {cpu.TotalMilliseconds / Math.Max(1, stored):N2} ms per event (start-up included), "
            + await Troubles(broker, database, queue);
        if (stored < bodies.Count)
        {
            Console.WriteLine($"    the worker stored only {stored:N0} of {bodies.Count:N0} within {DrainLimit.TotalMinutes} min ({ready} still ready)");
            return new Drain((int)stored, Stopwatch.GetElapsedTime(first, end), detail + ", NOT DRAINED");
        }
        return new Drain(bodies.Count, Stopwatch.GetElapsedTime(first, end), detail);
    }

    /// <summary>What went wrong on the way: dead-lettered, refused, and late events (whose lead was decided again).</summary>
    private static async Task<string> Troubles(BenchBroker broker, BenchDatabase database, string queue)
    {
        var errors = Math.Max(0, await broker.ReadyAsync(queue + "_error"));
        var rejected = await database.CountAsync("SELECT COUNT(*) FROM rejected_events");
        var late = await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE outcome LIKE 'late%'");
        return $"{errors} in {queue}_error, {rejected} rejected, {late} late";
    }

    private sealed record Percentiles(int Count, double P50, double P99, double Max)
    {
        public static Percentiles Of(IEnumerable<double> milliseconds)
        {
            var sorted = milliseconds.Order().ToList();
            return new Percentiles(sorted.Count, PipelineServers.Percentile(sorted, 50), PipelineServers.Percentile(sorted, 99), sorted.Count == 0 ? double.NaN : sorted[^1]);
        }

        public override string ToString() => $"p50 {P50,6:N0} ms   p99 {P99,6:N0} ms   max {Max,6:N0} ms   ({Count:N0} events)";
    }

    /// <summary>
    /// A fresh worker on a fresh database; events published as plain JSON at a steady rate, each event's publish time
    /// kept, and lead_events polled every few milliseconds for the ones not seen yet: a row is visible once its
    /// transaction committed, so the poll that first sees it bounds the commit from above.
    /// </summary>
    private static async Task LatencyAsync(BenchBroker broker, string dll, IReadOnlyList<NurtureMessage> all, int warmup, int rate, int seconds, string why, bool settle)
    {
        var latency = await LatencyAsync(broker, dll, all.Take(warmup + rate * seconds).ToList(), warmup, rate, settle);
        Console.WriteLine($"latency publish→stored at {rate:N0} events/s ({why}), fresh worker, {warmup:N0} warm-up{(settle ? " (all stored before the rest is published)" : "")} + {rate * seconds:N0} events over {seconds} s:");
        Console.WriteLine($"  after warm-up   {latency.After}");
        Console.WriteLine($"  with warm-up    {latency.All}");
        Console.WriteLine($"  publish→received_at (the worker's clock as it took each event, before its commit), after warm-up: {latency.Received}");
        Console.WriteLine($"  the worker stored the events after warm-up at {latency.KeptUp:N0} events/s (published at {rate:N0}/s); {latency.Troubles}");
        Console.WriteLine($"  {latency.Tail}");
        if (latency.Committed is { } committed) Console.WriteLine($"  {committed}");
        Console.WriteLine($"machine after: load average {PipelineServers.LoadAverage()}");
    }

    private static async Task<(Percentiles After, Percentiles All, Percentiles Received, double KeptUp, string Troubles, string Tail, string? Committed)> LatencyAsync(BenchBroker broker, string dll, List<NurtureMessage> events, int warmup, int rate, bool settle)
    {
        await using var database = await BenchDatabase.CreateAsync("latency");
        var queue = broker.Own($"nurture-bench-{PipelineServers.RunId}-latency");
        var exchange = $"nurture.bench.{PipelineServers.RunId}.latency";
        broker.OwnExchange(exchange);
        var folder = Path.Combine(Path.GetTempPath(), $"nurture-bench-{PipelineServers.RunId}-latency");
        var port = PipelineServers.FreePort();
        var (arguments, environment) = WorkerSettings(database, queue, exchange, port, folder);
        await using var worker = WorkerProcess.Start(dll, arguments, environment, folder);
        await worker.WaitReadyAsync(port, TimeSpan.FromMinutes(2));

        var bodies = events.Select(PipelineServers.Plain).ToList();
        var published = new long[events.Count];
        var publishedAt = new DateTimeOffset[events.Count];
        var stored = new long[events.Count];
        var index = events.Select((e, i) => (e.EventId, i)).ToDictionary(p => p.EventId, p => p.i);
        var sent = 0;
        using var stop = new CancellationTokenSource();
        var poller = Task.Run(async () =>
        {
            await using var connection = new NpgsqlConnection(database.ConnectionString);
            await connection.OpenAsync();
            await using var query = new NpgsqlCommand("SELECT event_id FROM lead_events WHERE event_id = ANY(@ids)", connection);
            var ids = new NpgsqlParameter<Guid[]>("ids", Array.Empty<Guid>());
            query.Parameters.Add(ids);
            var seen = 0;
            var pending = new List<int>();
            var lastSent = 0;
            while (seen < events.Count && !stop.IsCancellationRequested)
            {
                var upTo = Volatile.Read(ref sent);
                for (; lastSent < upTo; lastSent++) pending.Add(lastSent);
                if (pending.Count > 0)
                {
                    ids.TypedValue = pending.Select(i => events[i].EventId).ToArray();
                    var asked = Stopwatch.GetTimestamp();
                    await using (var reader = await query.ExecuteReaderAsync())
                    {
                        while (await reader.ReadAsync()) stored[index[reader.GetGuid(0)]] = asked;
                    }
                    seen += pending.RemoveAll(i => stored[i] != 0);
                }
                await Task.Delay(3);
            }
        });

        await using (var channel = await broker.OpenChannelAsync())
        {
            var properties = new BasicProperties { ContentType = "application/json", Persistent = true };
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < bodies.Count; i++)
            {
                if (settle && i == warmup && warmup > 0)
                {
                    // The measured events start only once the worker has stored every warm-up event: what its first
                    // seconds (the JIT, pools, prepared statements) leave behind is not counted against them.
                    var waited = Stopwatch.StartNew();
                    while (stored.Take(warmup).Any(t => t == 0) && waited.Elapsed < TimeSpan.FromMinutes(2)) await Task.Delay(10);
                    start = Stopwatch.GetTimestamp() - (long)((double)warmup / rate * Stopwatch.Frequency);
                }
                var due = TimeSpan.FromSeconds((double)i / rate) - Stopwatch.GetElapsedTime(start);
                if (due > TimeSpan.Zero) await Task.Delay(due);
                published[i] = Stopwatch.GetTimestamp();
                publishedAt[i] = DateTimeOffset.UtcNow;
                await channel.BasicPublishAsync(exchange, "", mandatory: false, properties, bodies[i]);
                Volatile.Write(ref sent, i + 1);
            }
        }
        if (await Task.WhenAny(poller, Task.Delay(TimeSpan.FromMinutes(2))) != poller)
        {
            await stop.CancelAsync();
            Console.WriteLine($"    {stored.Count(s => s == 0):N0} events not stored within 2 min of the last publish");
        }
        await poller;
        var latencies = Enumerable.Range(0, events.Count).Where(i => stored[i] != 0)
            .Select(i => (i, ms: Stopwatch.GetElapsedTime(published[i], stored[i]).TotalMilliseconds)).ToList();
        // received_at is the worker's own clock when it took the event, before its commit: where the time went.
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        var received = (await connection.QueryAsync<(Guid Id, DateTime At)>("SELECT event_id, received_at FROM lead_events"))
            .Where(r => index.TryGetValue(r.Id, out var i) && i >= warmup)
            .Select(r => (new DateTimeOffset(r.At, TimeSpan.Zero) - publishedAt[index[r.Id]]).TotalMilliseconds);
        // Below the publishing rate means a backlog grew: the latency then measures the queue, not the path.
        var measured = stored.Skip(warmup).Where(t => t != 0).ToList();
        var keptUp = measured.Count == 0 ? 0 : measured.Count / Stopwatch.GetElapsedTime(published[warmup], measured.Max()).TotalSeconds;
        // Where the tail comes from: a few slow seconds (a stall) or slow events spread over the whole run.
        string Tail(IEnumerable<(int i, double ms)> each)
        {
            var seconds = each.Where(l => l.i >= warmup).GroupBy(l => (l.i - warmup) / rate).Select(g => (Second: g.Key, Max: g.Max(l => l.ms))).ToList();
            var slow = seconds.Where(s => s.Max > 100).OrderByDescending(s => s.Max).ToList();
            return $"seconds (by publish time after warm-up) with an event over 100 ms: {slow.Count} of {seconds.Count}"
                + (slow.Count == 0 ? "" : "; the slowest: " + string.Join(", ", slow.Take(3).Select(s => $"second {s.Second} ({s.Max:N0} ms)")));
        }
        // With track_commit_timestamp on, PostgreSQL keeps each transaction's commit time: publish→committed exactly,
        // without the delays of this process's own poll (a poll that runs late counts its lateness against the worker).
        string? committed = null;
        if (await connection.ExecuteScalarAsync<string>("SHOW track_commit_timestamp") == "on")
        {
            var commits = (await connection.QueryAsync<(Guid Id, DateTime At)>("SELECT event_id, pg_xact_commit_timestamp(xmin) FROM lead_events"))
                .Where(r => index.ContainsKey(r.Id))
                .Select(r => (i: index[r.Id], ms: (new DateTimeOffset(r.At, TimeSpan.Zero) - publishedAt[index[r.Id]]).TotalMilliseconds)).ToList();
            committed = $"publish→committed (pg_xact_commit_timestamp), after warm-up: {Percentiles.Of(commits.Where(c => c.i >= warmup).Select(c => c.ms))}; {Tail(commits)}";
        }
        return (Percentiles.Of(latencies.Where(l => l.i >= warmup).Select(l => l.ms)), Percentiles.Of(latencies.Select(l => l.ms)),
            Percentiles.Of(received), keptUp, await Troubles(broker, database, queue), Tail(latencies), committed);
    }
}
