using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Publishes what the outbox holds: a batch at a time, each message with its stored id as the MassTransit message id,
/// marked published only after the broker confirmed every one (publisher confirms). A crash in between publishes the
/// batch again with the same ids: at least once, never lost. Consumers nudge it after each commit; it also polls.
/// </summary>
public sealed class OutboxRelay(LeadStore store, IBus bus, BusSettings settings, TimeProvider clock, NurtureMetrics metrics, ILogger<OutboxRelay> log) : BackgroundService
{
    private readonly SemaphoreSlim _nudge = new(0, 1);

    /// <summary>Something was committed to the outbox: look now rather than at the next poll.</summary>
    public void Nudge()
    {
        try
        {
            if (_nudge.CurrentCount == 0) _nudge.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already nudged.
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var poll = TimeSpan.FromMilliseconds(settings.OutboxPollMs);
        while (!stoppingToken.IsCancellationRequested)
        {
            var published = 0;
            try
            {
                published = await PublishPendingAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogWarning(e, "Publishing the outbox failed; trying again in {Poll}", poll);
            }
            if (published > 0) continue;
            try
            {
                await _nudge.WaitAsync(poll, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Publishes one batch; returns how many messages it published.</summary>
    public async Task<int> PublishPendingAsync(CancellationToken cancel)
    {
        var published = await store.PublishOutboxAsync(settings.OutboxBatchSize, batch => Task.WhenAll(batch.Select(m =>
        {
            if (!EventJson.TryParse(m.Payload, out var message, out var error))
            {
                // It can never be published; blocking the outbox behind it would stop everything else. The row stays for inspection.
                log.LogError("Outbox message {Id} ({Type}) cannot be read and is skipped: {Reason}", m.MessageId, m.Type, error);
                return Task.CompletedTask;
            }
            return bus.Publish(message, message.GetType(), context => context.MessageId = m.MessageId, cancel);
        })), clock.GetUtcNow(), cancel);
        if (published > 0) metrics.Published(published);
        return published;
    }

    public override void Dispose()
    {
        _nudge.Dispose();
        base.Dispose();
    }
}
