using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Dapper;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Nurture.Contracts;
using Nurture.Worker.Messaging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>
/// The outbox relay when its publishes hang on a connection the broker no longer serves (rabbitmq-dotnet-client #1930:
/// after a restart, publishes in flight and every one after them can wait for ever). The broker itself is the real
/// RabbitMQ and answers; the bus is a real in-memory MassTransit bus whose publishes hang until it is restarted.
/// </summary>
public sealed class When_the_outbox_relay_publishes(Broker broker) : IClassFixture<Broker>
{
    private static readonly DateTimeOffset Now = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero);

    [SkippableFact]
    public async Task Should_restart_the_bus_and_publish_everything_when_its_publishes_hang_while_the_broker_answers()
    {
        var settings = new BusSettings { Transport = BusTransport.RabbitMq, RabbitMq = broker.Require(), OutboxConfirmSeconds = 1, OutboxPollMs = 50 };
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        var messages = Enumerable.Range(0, 3).Select(i => new LeadScored
        {
            EventId = Guid.NewGuid(), LeadId = $"stuck-{i}", OccurredAt = Now, Score = 10, Behaviour = 10, Fit = 0, DefinitionVersion = "test", Explanation = [],
        }).ToList();
        await using (var connection = await database.OpenAsync())
        {
            foreach (var m in messages)
            {
                await connection.ExecuteAsync("INSERT INTO outbox (message_id, type, payload, created_at) VALUES (@id, 'LeadScored', @payload, @at)",
                    new { id = m.EventId, payload = EventJson.Write(m), at = Now.UtcDateTime });
            }
        }
        var seen = new ConcurrentDictionary<Guid, bool>();
        var inner = MassTransit.Bus.Factory.CreateUsingInMemory(bus => bus.ReceiveEndpoint("relay-stuck", e =>
            e.Handler<LeadScored>(context => Task.FromResult(seen[context.Message.EventId] = true))));
        await inner.StartAsync();
        var (stuckBus, stuck) = StuckPublishes.Around(inner);
        await using var check = new BrokerHealthCheck(settings);
        var metrics = new NurtureMetrics(new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        var relay = new OutboxRelay(new LeadStore(database), stuckBus, settings, TimeProvider.System, metrics, new OutboxSignal(), NullLogger<OutboxRelay>.Instance, check);

        await relay.StartAsync(CancellationToken.None);
        try
        {
            await Eventually.Until(() => Task.FromResult(seen.Count), n => n == messages.Count, TimeSpan.FromSeconds(60), "every message published after the bus restarted");
            await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0, TimeSpan.FromSeconds(30), "every row marked published");
        }
        finally
        {
            await relay.StopAsync(CancellationToken.None);
            await inner.StopAsync();
        }
        Assert.True(stuck.Hung > 0, "no publish hung: the test did not get the relay where it has to restart the bus");
        Assert.Equal(1, stuck.Stops);
        Assert.Equal(1, stuck.Starts);
    }

    /// <summary>A bus whose publishes never finish until it has been stopped and started again; everything else is the bus's own.</summary>
    public class StuckPublishes : DispatchProxy
    {
        private IBusControl _inner = null!;
        private volatile bool _restarted;
        private int _hung, _stops, _starts;

        public int Hung => _hung;
        public int Stops => _stops;
        public int Starts => _starts;

        public static (IBusControl Bus, StuckPublishes Stuck) Around(IBusControl inner)
        {
            var bus = Create<IBusControl, StuckPublishes>();
            var stuck = (StuckPublishes)(object)bus;
            stuck._inner = inner;
            return (bus, stuck);
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            switch (targetMethod!.Name)
            {
                case "Publish" when !_restarted:
                    Interlocked.Increment(ref _hung);
                    return new TaskCompletionSource().Task;
                case "StopAsync":
                    Interlocked.Increment(ref _stops);
                    break;
                case "StartAsync":
                    Interlocked.Increment(ref _starts);
                    _restarted = true;
                    break;
            }
            try
            {
                return targetMethod.Invoke(_inner, args);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
        }
    }
}
