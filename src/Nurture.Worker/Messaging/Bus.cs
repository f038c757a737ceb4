using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using RabbitMQ.Client;

namespace Nurture.Worker.Messaging;

/// <summary>MassTransit for Nurture: one consumer for every incoming event type on one queue, on RabbitMQ or in memory.</summary>
public static class Bus
{
    public static IServiceCollection AddNurtureBus(this IServiceCollection services, BusSettings settings)
    {
        services.AddSingleton(settings);
        services.AddSingleton<IncomingEvents>();
        services.AddSingleton<OutboxRelay>();
        services.AddHostedService(sp => sp.GetRequiredService<OutboxRelay>());
        if (settings.Transport == BusTransport.RabbitMq)
        {
            services.AddSingleton<BrokerHealthCheck>();
            services.AddSingleton<OutboxPublisher>();
            services.AddHealthChecks().AddCheck<BrokerHealthCheck>("broker", tags: ["ready"]);
        }
        // Start-up finishes only once the queue, its bindings and the consumers are in place, or fails saying so.
        services.Configure<MassTransitHostOptions>(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromSeconds(60);
            o.StopTimeout = TimeSpan.FromSeconds(30);
        });
        return services.AddMassTransit(x =>
        {
            x.AddConsumer<LeadEventConsumer, LeadEventConsumerDefinition>();
            x.AddConsumer<UnreadableEventConsumer, UnreadableEventConsumerDefinition>();

            if (settings.Transport == BusTransport.RabbitMq)
            {
                x.UsingRabbitMq((context, bus) =>
                {
                    bus.Host(settings.RabbitMq, h => h.PublisherConfirmation = true);
                    bus.ReceiveEndpoint(settings.Queue, e =>
                    {
                        e.PrefetchCount = settings.Prefetch;
                        // The consumer takes NurtureMessage, whose exchange also receives what Nurture publishes; the queue
                        // is bound to the incoming types only (EventJson.Incoming, the list the API and the reader use).
                        e.ConfigureConsumeTopology = false;
                        foreach (var exchange in IncomingExchanges(bus)) e.Bind(exchange);
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
                x.UsingInMemory((context, bus) => bus.ReceiveEndpoint(settings.Queue, e =>
                {
                    e.ConfigureConsumeTopology = false;
                    foreach (var exchange in IncomingExchanges(bus)) e.Bind(exchange);
                    Configure(e, context, settings);
                }));
            }
        });
    }

    /// <summary>The exchange of each event type publishers send (MassTransit names it after the type).</summary>
    private static IEnumerable<string> IncomingExchanges(IBusFactoryConfigurator bus) =>
        EventJson.Incoming.Select(type => (string)ExchangeOfMethod.MakeGenericMethod(type).Invoke(null, [bus])!);

    private static readonly System.Reflection.MethodInfo ExchangeOfMethod =
        typeof(Bus).GetMethod(nameof(ExchangeOf), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;

    private static string ExchangeOf<T>(IBusFactoryConfigurator bus)
        where T : class => bus.MessageTopology.GetMessageTopology<T>().EntityName;

    private static void Configure(IReceiveEndpointConfigurator e, IBusRegistrationContext context, BusSettings settings)
    {
        e.ConcurrentMessageLimit = settings.Prefetch;
        // Plain JSON (and messages with no content type) are read by Nurture's own reader; MassTransit's envelope as usual.
        e.AddDeserializer(new PlainJsonEvents(), isDefault: true);
        e.PublishFaults = false;
        e.ConfigureConsumers(context);
    }
}
