using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
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
        // A broker nobody answers at: the relay publishes nothing.
        await using var away = new BrokerHealthCheck(new BusSettings { Transport = BusTransport.RabbitMq, RabbitMq = new Uri("amqp://guest:guest@127.0.0.1:1/") });
        var relay = Relay(database, bus, outbox, away);
        await relay.StartAsync(CancellationToken.None);
        await Listening(outbox);

        await Handlers.For(database, _definition, TimeProvider.System, outbox).HandleNowAsync([Captured("kept-1")], "test", CancellationToken.None);
        var stored = await store.ReadOutboxAsync(100);
        var claimedWhileRunning = await store.ClaimOutboxAsync("relay-b", 100, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2));
        await relay.StopAsync(CancellationToken.None);

        Assert.NotEmpty(stored);
        Assert.Empty(claimedWhileRunning);
        Assert.Null(outbox.Claim(DateTimeOffset.UtcNow, 1));
        var taken = await store.ClaimOutboxAsync("relay-b", 100, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2));
        Assert.Equal(stored.Select(m => m.MessageId), taken.Select(m => m.MessageId));
    }

    [SkippableFact]
    public async Task Should_mark_what_it_published_while_the_database_was_away_once_it_answers_and_not_publish_it_again()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var name = new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString).Database;
        var admin = new Database(DatabaseProvider.PostgreSql, Environment.GetEnvironmentVariable(TestDatabase.PostgresVariable)!);
        using var outbox = new OutboxSignal();
        var seen = new ConcurrentDictionary<Guid, int>();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(bus => bus.ReceiveEndpoint("relay-db-away", e =>
            e.Handler<LeadScored>(context => Task.FromResult(seen.AddOrUpdate(context.Message.EventId, 1, (_, n) => n + 1)))));
        await bus.StartAsync();
        var relay = Relay(database, bus, outbox);
        try
        {
            await relay.StartAsync(CancellationToken.None);
            await Listening(outbox);
            // A batch stored under the relay's claim, its hand-over held back until the database is away.
            using var held = new OutboxSignal();
            held.Listen(outbox.Claim(DateTimeOffset.UtcNow, 1)!.Claimer, TimeSpan.FromMinutes(2), limit: 100);
            await Handlers.For(database, _definition, TimeProvider.System, held).HandleNowAsync([Captured("away-1"), Captured("away-2")], "test", CancellationToken.None);
            var messages = held.Take(100);

            await admin.CountAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS false");
            await admin.CountAsync("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = @name", new { name });
            outbox.Hand(outbox.Claim(DateTimeOffset.UtcNow, messages.Count)!, messages);
            await Eventually.Until(() => Task.FromResult(seen.Count), n => n == 2, TimeSpan.FromSeconds(30), "both scores on the bus while the database is away");
            await admin.CountAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS true");

            // Claimed for two minutes: only the relay's own mark, tried again, can have marked them within seconds.
            await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0,
                TimeSpan.FromSeconds(30), "every row marked published", e => e is Npgsql.NpgsqlException);
            Assert.All(seen.Values, n => Assert.Equal(1, n));
        }
        finally
        {
            await admin.CountAsync($"ALTER DATABASE {name} ALLOW_CONNECTIONS true");
            await relay.StopAsync(CancellationToken.None);
            await bus.StopAsync();
        }
    }

    private static OutboxRelay Relay(Database database, IBus bus, OutboxSignal outbox, BrokerHealthCheck? broker = null) =>
        new(new LeadStore(database), bus, new BusSettings(), TimeProvider.System, new NurtureMetrics(Meters, TimeProvider.System), outbox,
            NullLogger<OutboxRelay>.Instance, broker);

    /// <summary>The relay takes hand-overs once it runs (a batch stored before that leaves its rows for a claim).</summary>
    private static Task<bool> Listening(OutboxSignal outbox) =>
        Eventually.Until(() => Task.FromResult(outbox.Claim(DateTimeOffset.UtcNow, 1) is not null), listening => listening, TimeSpan.FromSeconds(30), "the relay listening");

    private static LeadCaptured Captured(string leadId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = DateTimeOffset.UtcNow, Email = $"{leadId}@softwarehaus.example", FirstName = "Anna",
        LastName = "Schmidt", Company = "Softwarehaus GmbH", Role = "Head of IT", Industry = "software", CompanySize = 50,
        Country = "DE", TimeZone = "Europe/Berlin", Language = "de", Source = "webinar", Consent = true,
    };
}
