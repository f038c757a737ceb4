using MassTransit;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Worker.Leads;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Every incoming event type, one consumer for all of them so that a lead's events keep the order they came in. Each
/// event is checked, then stored with the others that arrived beside it (<see cref="IncomingEvents"/>, which batches
/// them for <see cref="LeadEventHandler"/>); the broker hears of it once its batch committed.
/// </summary>
public sealed partial class LeadEventConsumer(IncomingEvents incoming, LeadStore store, TimeProvider clock, NurtureMetrics metrics, BusSettings settings,
    ILogger<LeadEventConsumer> log) : IConsumer<NurtureMessage>
{
    public async Task Consume(ConsumeContext<NurtureMessage> context)
    {
        var cancel = context.CancellationToken;
        var message = context.Message;
        // Publishers on MassTransit skip the plain-JSON reader; the same rules apply to them.
        var problem = EventJson.Incoming.Contains(message.GetType())
            ? EventJson.Check(message)
            : $"type: '{message.GetType().Name}' is an event Nurture publishes, not one it consumes.";
        if (problem is not null)
        {
            LogRejected(log, message.GetType().Name, message.EventId, problem);
            await store.RecordRejectedAsync("bus", problem, EventJson.Write(message), clock.GetUtcNow(), cancel);
            metrics.Rejected("bus");
            await ToErrorQueueAsync(context, message, problem);
            return;
        }
        AppliedEvent applied;
        try
        {
            applied = await incoming.StoreAsync(message, cancel);
        }
        catch (Exception e) when (!LeadEventConsumerDefinition.MayPass(e) && e is not OperationCanceledException)
        {
            // MassTransit faults it into the error queue: it gets its rejected_events row first (the exception's type
            // only: its text may quote a value).
            await store.RecordRejectedAsync("bus", $"$: could not be stored ({e.GetType().Name}).", EventJson.Write(message), clock.GetUtcNow(), cancel);
            throw;
        }
        if (applied.Refused is { } refused) await ToErrorQueueAsync(context, message, refused);
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
/// How the lead events are consumed: as many at once as the prefetch allows (they wait in <see cref="IncomingEvents"/>
/// for their batch), and the one retry policy.
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
