using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Dapper;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Messaging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>The relay running as the worker runs it, with what the event handler hands over after its commits.</summary>
public sealed class When_the_relay_takes_what_batches_hand_over
{
    private static readonly IMeterFactory Meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
    private readonly Definition _definition = DefaultDefinition.Create();

    [Fact]
    public async Task Should_publish_a_batchs_messages_long_before_their_lease_would_let_a_claim_take_them()
    {
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        using var outbox = new OutboxSignal();
        var seen = new ConcurrentDictionary<Guid, bool>();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(bus => bus.ReceiveEndpoint("relay-handed", e =>
            e.Handler<LeadScored>(context => Task.FromResult(seen[context.Message.EventId] = true))));
        await bus.StartAsync();
        var relay = Relay(database, bus, outbox);
        try
        {
            await relay.StartAsync(CancellationToken.None);
            await Listening(outbox);

            await Handlers.For(database, _definition, TimeProvider.System, outbox)
                .HandleNowAsync([Captured("handed-1"), Captured("handed-2")], "test", CancellationToken.None);

            // Stored claimed for two minutes: within seconds only the hand-over can have published them.
            var scored = await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'LeadScored'");
            Assert.Equal(2, scored);
            await Eventually.Until(() => Task.FromResult(seen.Count), n => n == scored, TimeSpan.FromSeconds(30), "both scores on the bus");
            await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0,
                TimeSpan.FromSeconds(30), "every row marked published");
        }
        finally
        {
            await relay.StopAsync(CancellationToken.None);
            await bus.StopAsync();
        }
    }

    [Fact]
    public async Task Should_give_back_what_was_handed_over_and_not_published_when_it_stops()
    {
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        var store = new LeadStore(database);
        using var outbox = new OutboxSignal();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(_ => { });
        // A broker that takes the first publish and never confirms it: the relay's round waits, and what comes after waits handed over.
        var held = new TaskCompletionSource();
        bus.ConnectPublishObserver(new HoldingObserver(held.Task));
        await bus.StartAsync();
        var relay = Relay(database, bus, outbox);
        try
        {
            await relay.StartAsync(CancellationToken.None);
            await Listening(outbox);
            var handler = Handlers.For(database, _definition, TimeProvider.System, outbox);
            await handler.HandleNowAsync([Captured("kept-1")], "test", CancellationToken.None);
            await Eventually.Until(() => Task.FromResult(outbox.Waiting), n => n == 0, TimeSpan.FromSeconds(30), "the first batch taken by the relay's round");
            await handler.HandleNowAsync([Captured("kept-2")], "test", CancellationToken.None);
            var stored = await store.ReadOutboxAsync(100);
            var claimedWhileRunning = await store.ClaimOutboxAsync("relay-b", 100, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2));
            Assert.True(outbox.Waiting > 0, "the second batch waits handed over");

            await relay.StopAsync(CancellationToken.None);

            Assert.Empty(claimedWhileRunning);
            Assert.Null(outbox.LeaseFor(DateTimeOffset.UtcNow, 1));
            // Both given back: the round's publishes it gave up at the stop, and what waited handed over.
            var taken = await store.ClaimOutboxAsync("relay-b", 100, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2));
            Assert.Equal(stored.Select(m => m.MessageId), taken.Select(m => m.MessageId));
        }
        finally
        {
            held.TrySetResult();
            await bus.StopAsync();
        }
    }

    [Fact]
    public async Task Should_store_a_batchs_messages_for_a_claim_while_the_broker_does_not_answer()
    {
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        var store = new LeadStore(database);
        using var outbox = new OutboxSignal();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(_ => { });
        // A broker nobody answers at: the relay publishes nothing and takes no hand-overs.
        await using var away = new BrokerHealthCheck(new BusSettings { Transport = BusTransport.RabbitMq, RabbitMq = new Uri("amqp://guest:guest@127.0.0.1:1/") });
        var relay = Relay(database, bus, outbox, away);
        await relay.StartAsync(CancellationToken.None);
        try
        {
            await Listening(outbox);
            // Once the relay has asked the broker, batches store their rows for any relay to claim.
            await Eventually.Until(async () =>
            {
                var leadId = $"away-{Guid.NewGuid():N}";
                await Handlers.For(database, _definition, TimeProvider.System, outbox).HandleNowAsync([Captured(leadId)], "test", CancellationToken.None);
                return await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NULL AND payload LIKE @pattern", new { pattern = $"%{leadId}%" });
            }, unclaimed => unclaimed > 0, TimeSpan.FromSeconds(30), "a batch's rows stored unclaimed");
            Assert.NotEmpty(await store.ClaimOutboxAsync("relay-b", 100, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2)));
            Assert.Null(outbox.LeaseFor(DateTimeOffset.UtcNow, 1));
        }
        finally
        {
            await relay.StopAsync(CancellationToken.None);
        }
    }

    private sealed class HoldingObserver(Task held) : IPublishObserver
    {
        public Task PrePublish<T>(PublishContext<T> context) where T : class => held;
        public Task PostPublish<T>(PublishContext<T> context) where T : class => Task.CompletedTask;
        public Task PublishFault<T>(PublishContext<T> context, Exception exception) where T : class => Task.CompletedTask;
    }

    [SkippableFact]
    public async Task Should_mark_what_it_published_while_the_database_was_away_once_it_answers()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var name = new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString).Database;
        var admin = new Database(DatabaseProvider.PostgreSql, Environment.GetEnvironmentVariable(TestDatabase.PostgresVariable)!);
        using var outbox = new OutboxSignal();
        var seen = new ConcurrentDictionary<Guid, bool>();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(bus => bus.ReceiveEndpoint("relay-db-away", e =>
            e.Handler<LeadScored>(context => Task.FromResult(seen[context.Message.EventId] = true))));
        await bus.StartAsync();
        var relay = Relay(database, bus, outbox);
        try
        {
            await relay.StartAsync(CancellationToken.None);
            await Listening(outbox);
            // A batch stored under the relay's claim, its hand-over held back until the database is away.
            using var held = new OutboxSignal();
            held.Listen(outbox.LeaseFor(DateTimeOffset.UtcNow, 1)!.Claimer, TimeSpan.FromMinutes(2), limit: 100, margin: TimeSpan.FromSeconds(30));
            await Handlers.For(database, _definition, TimeProvider.System, held).HandleNowAsync([Captured("away-1"), Captured("away-2")], "test", CancellationToken.None);
            var messages = held.Take(100, DateTimeOffset.UtcNow);

            await admin.CountAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS false");
            await admin.CountAsync("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = @name", new { name });
            outbox.Hand(outbox.LeaseFor(DateTimeOffset.UtcNow, messages.Count)!, messages);
            await Eventually.Until(() => Task.FromResult(seen.Count), n => n == 2, TimeSpan.FromSeconds(30), "both scores on the bus while the database is away");
            await admin.CountAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS true");

            // Claimed for two minutes: only the relay's own mark, tried again, can have marked them within seconds.
            await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0,
                TimeSpan.FromSeconds(30), "every row marked published", e => e is Npgsql.NpgsqlException);
        }
        finally
        {
            await admin.CountAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS true");
            await relay.StopAsync(CancellationToken.None);
            await bus.StopAsync();
        }
    }

    [Fact]
    public async Task Should_publish_a_backlog_of_unclaimed_rows_within_seconds_while_batches_hand_over_newer_ones()
    {
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        using var outbox = new OutboxSignal();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(_ => { });
        await bus.StartAsync();
        // Ten a round: the backlog of 1,000 is a hundred rounds, which a claim a second (or a sweep every ten) would take minutes for.
        var relay = Relay(database, bus, outbox, settings: new BusSettings { OutboxBatchSize = 10 });
        try
        {
            await relay.StartAsync(CancellationToken.None);
            await Listening(outbox);
            var handler = Handlers.For(database, _definition, TimeProvider.System, outbox);
            await handler.HandleNowAsync([Captured("before-backlog")], "test", CancellationToken.None);
            await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0, TimeSpan.FromSeconds(30), "the first batch published");
            // Rows stored by another process (`ingest`, another worker's overflow): unclaimed, and no nudge here.
            await using (var connection = await database.OpenAsync())
            await using (var insert = await connection.BeginTransactionAsync())
            {
                for (var i = 0; i < 1000; i++)
                {
                    var message = new LeadScored
                    {
                        EventId = Guid.NewGuid(), LeadId = $"backlog-{i}", OccurredAt = DateTimeOffset.UtcNow, Score = 10, Behaviour = 10, Fit = 0, DefinitionVersion = "test", Explanation = [],
                    };
                    await connection.ExecuteAsync("INSERT INTO outbox (message_id, type, payload, created_at) VALUES (@id, 'LeadScored', @payload, @at)",
                        new { id = message.EventId, payload = EventJson.Write(message), at = DateTimeOffset.UtcNow }, insert);
                }
                await insert.CommitAsync();
            }
            // Newer rows handed over and marked above the backlog.
            for (var i = 0; i < 5; i++) await handler.HandleNowAsync([Captured($"after-backlog-{i}")], "test", CancellationToken.None);

            await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0,
                TimeSpan.FromSeconds(30), "the backlog published");
        }
        finally
        {
            await relay.StopAsync(CancellationToken.None);
            await bus.StopAsync();
        }
    }

    private static OutboxRelay Relay(Database database, IBus bus, OutboxSignal outbox, BrokerHealthCheck? broker = null, BusSettings? settings = null) =>
        new(new LeadStore(database), bus, settings ?? new BusSettings(), TimeProvider.System, new NurtureMetrics(Meters, TimeProvider.System), outbox,
            NullLogger<OutboxRelay>.Instance, broker);

    /// <summary>The relay takes hand-overs once it runs (a batch stored before that leaves its rows for a claim).</summary>
    private static Task<bool> Listening(OutboxSignal outbox) =>
        Eventually.Until(() => Task.FromResult(outbox.Listening), listening => listening, TimeSpan.FromSeconds(30), "the relay listening");

    private static LeadCaptured Captured(string leadId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = DateTimeOffset.UtcNow, Email = $"{leadId}@softwarehaus.example", FirstName = "Anna",
        LastName = "Schmidt", Company = "Softwarehaus GmbH", Role = "Head of IT", Industry = "software", CompanySize = 50,
        Country = "DE", TimeZone = "Europe/Berlin", Language = "de", Source = "webinar", Consent = true,
    };
}

/// <summary>The hand-over between a batch and the relay, alone.</summary>
public sealed class When_a_batch_hands_messages_to_the_relay
{
    private static readonly DateTimeOffset Now = new(2026, 3, 2, 9, 30, 0, TimeSpan.Zero);

    private static LeadScored Scored(string leadId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = Now, Score = 10, Behaviour = 10, Fit = 0, DefinitionVersion = "test", Explanation = [],
    };

    [Fact]
    public void Should_leave_to_a_claim_a_message_whose_lease_ends_before_the_relay_takes_it()
    {
        using var outbox = new OutboxSignal();
        outbox.Listen("relay-here", TimeSpan.FromMinutes(2), limit: 10, margin: TimeSpan.FromSeconds(30));
        var lease = outbox.LeaseFor(Now, 1)!;
        outbox.Hand(lease, [Scored("late-take")]);

        Assert.Equal(Now.AddMinutes(2), lease.Until);
        Assert.Empty(outbox.Take(10, Now.AddSeconds(100)));
        Assert.Equal(0, outbox.Waiting);
    }

    [Fact]
    public void Should_blank_what_a_batch_hands_over_about_a_lead_erased_since_it_read_it()
    {
        using var outbox = new OutboxSignal();
        outbox.Listen("relay-here", TimeSpan.FromMinutes(2), limit: 10, margin: TimeSpan.FromSeconds(30));
        var lease = outbox.LeaseFor(Now, 2)!;
        // The erase commits and blanks what waits before the batch that read the lead before it hands over.
        outbox.Blank(new HashSet<string> { "erased-x" }, Now.AddSeconds(1));
        outbox.Hand(lease, [Changed("erased-x"), Changed("kept-x")]);

        var taken = outbox.Take(10, Now).Cast<LeadStageChanged>().ToDictionary(m => m.LeadId, m => m.Reason);
        Assert.DoesNotContain("no budget", taken["erased-x"], StringComparison.Ordinal);
        Assert.Contains("no budget", taken["kept-x"], StringComparison.Ordinal);
    }

    private static LeadStageChanged Changed(string leadId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = Now, From = LeadStage.Sal, To = LeadStage.Recycled, Reason = "rejected by sales: no budget", DefinitionVersion = "test",
    };

    [Fact]
    public void Should_lease_nothing_while_the_broker_is_away_or_the_relay_has_enough_waiting_or_has_stopped()
    {
        using var outbox = new OutboxSignal();
        Assert.Null(outbox.LeaseFor(Now, 1));
        outbox.Listen("relay-here", TimeSpan.FromMinutes(2), limit: 2, margin: TimeSpan.FromSeconds(30));

        outbox.Pause(true);
        var paused = outbox.LeaseFor(Now, 1);
        outbox.Pause(false);
        var lease = outbox.LeaseFor(Now, 2)!;
        outbox.Hand(lease, [Scored("a"), Scored("b")]);
        var full = outbox.LeaseFor(Now, 1);
        var left = outbox.StopListening();
        outbox.Hand(lease, [Scored("after-stop")]);

        Assert.Null(paused);
        Assert.Null(full);
        Assert.Equal(["a", "b"], left.Cast<LeadScored>().Select(m => m.LeadId));
        Assert.Empty(outbox.Take(10, Now));
        Assert.Null(outbox.LeaseFor(Now, 1));
    }
}
