using System.Data.Common;
using MassTransit;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Stores incoming events of one type a batch at a time: one transaction holds every decision in the batch with the
/// messages it causes (the outbox). A redelivered or duplicated event is acknowledged and counted, never applied twice.
/// </summary>
public sealed class LeadEventConsumer<T>(LeadStore store, Definition definition, TimeProvider clock, OutboxRelay relay, NurtureMetrics metrics,
    BusSettings settings, MessagingHooks hooks, ILogger<LeadEventConsumer<T>> log) : IConsumer<Batch<T>>
    where T : NurtureMessage
{
    public async Task Consume(ConsumeContext<Batch<T>> context)
    {
        var cancel = context.CancellationToken;
        var events = new List<NurtureMessage>(context.Message.Length);
        foreach (var item in context.Message)
        {
            // Publishers on MassTransit skip the plain-JSON reader; the same limits apply to them.
            if (EventJson.Check(item.Message) is { } problem) await RejectAsync(context, item, problem);
            else events.Add(item.Message);
        }
        if (events.Count == 0) return;

        IReadOnlyList<AppliedEvent> applied;
        try
        {
            applied = await store.ApplyWithRetryAsync(events, definition, clock.GetUtcNow(), attempts: 5, cancel);
        }
        catch (Exception e) when (!MayPass(e))
        {
            // One event the database refuses must not hold back the rest of its batch: store them one by one, and keep
            // the one that fails (with its reason) in rejected_events and the error queue.
            applied = await ApplyOneByOneAsync(context, events, e);
        }

        metrics.Applied(applied);
        relay.Nudge();
        if (hooks.AfterStored is { } after) await after(applied);
    }

    private async Task<List<AppliedEvent>> ApplyOneByOneAsync(ConsumeContext<Batch<T>> context, List<NurtureMessage> events, Exception batchError)
    {
        log.LogWarning(batchError, "A batch of {Count} {Type} events failed; storing them one by one", events.Count, typeof(T).Name);
        var applied = new List<AppliedEvent>(events.Count);
        foreach (var e in events)
        {
            try
            {
                applied.AddRange(await store.ApplyWithRetryAsync([e], definition, clock.GetUtcNow(), attempts: 5, context.CancellationToken));
            }
            catch (Exception error) when (!MayPass(error))
            {
                var item = context.Message.First(m => m.Message.EventId == e.EventId);
                await RejectAsync(context, item, $"{error.GetType().Name}: {error.Message}");
            }
        }
        return applied;
    }

    /// <summary>Keeps the event with its reason in rejected_events and forwards it to the error queue, so nothing is lost.</summary>
    private async Task RejectAsync(ConsumeContext<Batch<T>> context, ConsumeContext<T> item, string reason)
    {
        log.LogWarning("Rejected {Type} {EventId}: {Reason}", typeof(T).Name, item.Message.EventId, reason);
        await store.RecordRejectedAsync(item.ReceiveContext.InputAddress?.ToString() ?? settings.Queue, reason, EventJson.Write(item.Message), clock.GetUtcNow(), context.CancellationToken);
        metrics.Rejected("consumer");
        var errorQueue = await context.GetSendEndpoint(new Uri($"queue:{settings.Queue}_error"));
        await errorQueue.Send(item.Message, item.Message.GetType(), send =>
        {
            send.Headers.Set(MessageHeaders.Reason, "rejected");
            send.Headers.Set(MessageHeaders.FaultMessage, reason);
        }, context.CancellationToken);
    }

    /// <summary>Errors worth a redelivery: a version conflict that outlived the quick retries, or a database error that may pass.</summary>
    internal static bool MayPass(Exception e) => e is LeadVersionConflictException or OperationCanceledException || e is DbException d && SqlDialect.IsTransient(d) || e is TimeoutException;
}

/// <summary>Test seams for the consumers; empty in production.</summary>
public sealed class MessagingHooks
{
    /// <summary>Runs after a batch is committed and before it is acknowledged: a test can fail here to force a redelivery.</summary>
    public Func<IReadOnlyList<AppliedEvent>, Task>? AfterStored { get; set; }
}

/// <summary>An event that can never be processed; the retry policy lets it go straight to the error queue.</summary>
public sealed class EventRejectedException(string reason) : Exception(reason);

/// <summary>Keeps a message that is not a valid event in rejected_events, then fails it into the error queue with its reason.</summary>
public sealed class UnreadableEventConsumer(LeadStore store, TimeProvider clock, NurtureMetrics metrics, ILogger<UnreadableEventConsumer> log) : IConsumer<UnreadableEvent>
{
    public async Task Consume(ConsumeContext<UnreadableEvent> context)
    {
        var origin = context.ReceiveContext.InputAddress?.ToString() ?? "bus";
        log.LogWarning("Rejected a message on {Origin}: {Reason}", origin, context.Message.Reason);
        await store.RecordRejectedAsync(origin, context.Message.Reason, context.Message.Payload, clock.GetUtcNow(), context.CancellationToken);
        metrics.Rejected("bus");
        throw new EventRejectedException(context.Message.Reason);
    }
}
