using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using RabbitMQ.Client;

namespace Nurture.Worker.Messaging;

/// <summary>MassTransit for Nurture: a batch consumer per incoming event type on one queue, on RabbitMQ or in memory.</summary>
public static class Bus
{
    public static IServiceCollection AddNurtureBus(this IServiceCollection services, BusSettings settings, bool testHarness = false)
    {
        services.AddSingleton(settings);
        services.AddSingleton<MessagingHooks>();
        services.AddSingleton<OutboxRelay>();
        services.AddHostedService(sp => sp.GetRequiredService<OutboxRelay>());
        // Start-up finishes only once the queue, its bindings and the consumers are in place, or fails saying so.
        services.Configure<MassTransitHostOptions>(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromSeconds(60);
            o.StopTimeout = TimeSpan.FromSeconds(30);
        });
        Action<IBusRegistrationConfigurator> configure = x =>
        {
            // One consumer per event a publisher may send (EventJson.Incoming, the list the API and the plain-JSON reader
            // accept too); the outgoing events are Nurture's own to publish.
            foreach (var type in EventJson.Incoming) ConsumeMethod.MakeGenericMethod(type).Invoke(null, [x, settings]);
            x.AddConsumer<UnreadableEventConsumer>();

            if (settings.Transport == BusTransport.RabbitMq)
            {
                x.UsingRabbitMq((context, bus) =>
                {
                    bus.Host(settings.RabbitMq, h => h.PublisherConfirmation = true);
                    bus.ReceiveEndpoint(settings.Queue, e =>
                    {
                        e.PrefetchCount = settings.Prefetch;
                        // Plain JSON publishers: a durable fanout exchange bound to the queue, read by PlainJsonEvents.
                        e.Bind(settings.Exchange, b =>
                        {
                            b.ExchangeType = ExchangeType.Fanout;
                            b.Durable = true;
                        });
                        Configure(e, context, settings);
                    });
                });
            }
            else
            {
                x.UsingInMemory((context, bus) => bus.ReceiveEndpoint(settings.Queue, e => Configure(e, context, settings)));
            }
        };
        return testHarness ? services.AddMassTransitTestHarness(configure) : services.AddMassTransit(configure);
    }

    private static readonly System.Reflection.MethodInfo ConsumeMethod =
        typeof(Bus).GetMethod(nameof(Consume), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;

    private static void Consume<T>(IBusRegistrationConfigurator x, BusSettings settings)
        where T : NurtureMessage =>
        x.AddConsumer<LeadEventConsumer<T>>(c => c.Options<BatchOptions>(o => o
            .SetMessageLimit(settings.BatchSize)
            .SetTimeLimit(TimeSpan.FromMilliseconds(settings.BatchWaitMs))
            .SetConcurrencyLimit(settings.ConcurrentBatches)));

    private static void Configure(IReceiveEndpointConfigurator e, IBusRegistrationContext context, BusSettings settings)
    {
        e.ConcurrentMessageLimit = settings.Prefetch;
        // Plain JSON (and messages with no content type) are read by Nurture's own reader; MassTransit's envelope as usual.
        e.AddDeserializer(new PlainJsonEvents(), isDefault: true);
        e.PublishFaults = false;
        e.UseMessageRetry(r =>
        {
            r.Ignore<EventRejectedException>();
            r.Exponential(settings.Retries, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(300));
        });
        e.ConfigureConsumers(context);
    }
}
