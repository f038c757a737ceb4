using MassTransit;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Worker.Leads;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Every incoming event type, a batch at a time and in arrival order, handed to <see cref="LeadEventHandler"/>. One
/// consumer for all types keeps a lead's events in the order they came, so a version conflict is the exception.
/// </summary>
public sealed partial class LeadEventConsumer(LeadEventHandler handler, LeadStore store, TimeProvider clock, NurtureMetrics metrics, BusSettings settings,
    ILogger<LeadEventConsumer> log) : IConsumer<Batch<NurtureMessage>>
{
    public async Task Consume(ConsumeContext<Batch<NurtureMessage>> context)
    {
        var cancel = context.CancellationToken;
        var events = new List<NurtureMessage>(context.Message.Length);
        foreach (var item in context.Message)
        {
            // Publishers on MassTransit skip the plain-JSON reader; the same rules apply to them.
            var problem = EventJson.Incoming.Contains(item.Message.GetType())
                ? EventJson.Check(item.Message)
                : $"type: '{item.Message.GetType().Name}' is an event Nurture publishes, not one it consumes.";
            if (problem is null)
            {
                events.Add(item.Message);
                continue;
            }
            LogRejected(log, item.Message.GetType().Name, item.Message.EventId, problem);
            await store.RecordRejectedAsync("bus", problem, EventJson.Write(item.Message), clock.GetUtcNow(), cancel);
            metrics.Rejected("bus");
            await ToErrorQueueAsync(context, item.Message, problem);
        }
        if (events.Count == 0) return;

        IReadOnlyList<AppliedEvent> applied;
        try
        {
            applied = await handler.HandleAsync(events, "bus", cancel);
        }
        catch (Exception e) when (!LeadEventConsumerDefinition.MayPass(e))
        {
            // MassTransit faults the batch into the error queue: each of its events gets its rejected_events row first
            // (the exception's type only: its text may quote a value).
            foreach (var m in events) await store.RecordRejectedAsync("bus", $"$: could not be stored ({e.GetType().Name}).", EventJson.Write(m), clock.GetUtcNow(), cancel);
            throw;
        }
        foreach (var refused in applied.Where(a => a.Refused is not null))
        {
            await ToErrorQueueAsync(context, refused.Event, refused.Refused!);
        }
    }

    /// <summary>The event goes to the error queue with its reason (rejected_events has it too), so nothing is lost.</summary>
    private async Task ToErrorQueueAsync(ConsumeContext context, NurtureMessage message, string reason)
    {
        var errorQueue = await context.GetSendEndpoint(new Uri($"queue:{settings.Queue}_error"));
        await errorQueue.Send(message, message.GetType(), send =>
        {
            send.Headers.Set(MessageHeaders.Reason, "rejected");
            send.Headers.Set(MessageHeaders.FaultMessage, reason);
        }, context.CancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected {Type} {EventId}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string type, Guid eventId, string reason);
}

/// <summary>
/// How the lead events are consumed: batches of Nurture:Bus:BatchSize in arrival order, and the one retry policy.
/// Version conflicts are tried again at once; errors that pass by themselves (a database or broker away, a deadlock)
/// are tried again with growing pauses for as long as Nurture:Bus:RetryLimit allows (0: until they pass), so an
/// outage never dead-letters an event. The messages wait unacknowledged in the broker meanwhile.
/// </summary>
public sealed class LeadEventConsumerDefinition : ConsumerDefinition<LeadEventConsumer>
{
    private readonly BusSettings _settings;

    public LeadEventConsumerDefinition(BusSettings settings)
    {
        _settings = settings;
        EndpointName = settings.Queue;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<LeadEventConsumer> consumerConfigurator, IRegistrationContext context)
    {
        consumerConfigurator.Options<BatchOptions>(o => o
            .SetMessageLimit(_settings.BatchSize)
            .SetTimeLimit(TimeSpan.FromMilliseconds(_settings.BatchWaitMs))
            .SetConcurrencyLimit(_settings.ConcurrentBatches));
        consumerConfigurator.UseMessageRetry(r =>
        {
            r.Handle<Exception>(e => MayPass(e));
            r.Exponential(_settings.RetryLimit == 0 ? int.MaxValue : _settings.RetryLimit, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(_settings.RetryMaxSeconds), TimeSpan.FromMilliseconds(500));
        });
        consumerConfigurator.UseMessageRetry(r =>
        {
            r.Handle<LeadVersionConflictException>();
            r.Immediate(5);
        });
    }

    /// <summary>Errors worth another try: a version conflict, a database error that is not a refusal of a value, a timeout, the broker away.</summary>
    internal static bool MayPass(Exception e) => LeadEventHandler.MayPass(e) || e is MassTransitException or RabbitMQ.Client.Exceptions.RabbitMQClientException or IOException;
}

/// <summary>
/// A message that is not a valid event gets its rejected_events row before it goes to the error queue: a database that
/// is away is waited out with the events' own retry policy, so nothing reaches the error queue without its row.
/// </summary>
public sealed class UnreadableEventConsumerDefinition : ConsumerDefinition<UnreadableEventConsumer>
{
    private readonly BusSettings _settings;

    public UnreadableEventConsumerDefinition(BusSettings settings)
    {
        _settings = settings;
        EndpointName = settings.Queue;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<UnreadableEventConsumer> consumerConfigurator, IRegistrationContext context) =>
        consumerConfigurator.UseMessageRetry(r =>
        {
            r.Handle<Exception>(e => LeadEventConsumerDefinition.MayPass(e));
            r.Exponential(_settings.RetryLimit == 0 ? int.MaxValue : _settings.RetryLimit, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(_settings.RetryMaxSeconds), TimeSpan.FromMilliseconds(500));
        });
}

/// <summary>An event that can never be processed; the retry policy lets it go straight to the error queue.</summary>
public sealed class EventRejectedException(string reason) : Exception(reason);

/// <summary>Keeps a message that is not a valid event in rejected_events, then fails it into the error queue with its reason.</summary>
public sealed partial class UnreadableEventConsumer(LeadStore store, TimeProvider clock, NurtureMetrics metrics, ILogger<UnreadableEventConsumer> log) : IConsumer<UnreadableEvent>
{
    public async Task Consume(ConsumeContext<UnreadableEvent> context)
    {
        var origin = context.ReceiveContext.InputAddress?.ToString() ?? "bus";
        LogUnreadable(log, origin, context.Message.Reason);
        await store.RecordRejectedAsync(origin, context.Message.Reason, context.Message.Payload, clock.GetUtcNow(), context.CancellationToken);
        metrics.Rejected("bus");
        throw new EventRejectedException(context.Message.Reason);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected a message on {Origin}: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string origin, string reason);
}
