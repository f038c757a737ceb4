using System.Threading.Channels;
using Nurture.Contracts;
using Nurture.Worker.Leads;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Where the bus's events wait for their transaction. Every message the broker hands over is consumed at once and
/// queued here; a writer takes everything that queued while it stored the previous batch (up to Nurture:Bus:BatchSize)
/// and hands it to <see cref="LeadEventHandler"/> as one batch. So an event waits only for the batch in front of it:
/// alone when the bus is quiet, a full batch when it is busy, and no timer in between.
/// </summary>
public sealed class IncomingEvents : IAsyncDisposable
{
    private readonly Channel<Waiting> _queue = Channel.CreateUnbounded<Waiting>(new UnboundedChannelOptions { SingleWriter = false });
    private readonly CancellationTokenSource _stopping = new();
    private readonly LeadEventHandler _handler;
    private readonly int _batchSize;
    private readonly Task[] _writers;

    public IncomingEvents(LeadEventHandler handler, BusSettings settings)
    {
        _handler = handler;
        _batchSize = settings.BatchSize;
        // One writer keeps the events in the order the broker delivered them; more store batches side by side.
        _writers = Enumerable.Range(0, settings.ConcurrentBatches).Select(_ => Task.Run(WriteAsync)).ToArray();
    }

    /// <summary>Stores one event with the others waiting beside it; completes once its batch committed.</summary>
    public Task<AppliedEvent> StoreAsync(NurtureMessage message, CancellationToken cancel)
    {
        var waiting = new Waiting(message, cancel);
        if (!_queue.Writer.TryWrite(waiting)) throw new OperationCanceledException("The worker is stopping.");
        // A consumer that stops waiting leaves its message unacknowledged; stored meanwhile, its copy is a duplicate.
        return waiting.Done.Task.WaitAsync(cancel);
    }

    private async Task WriteAsync()
    {
        var batch = new List<Waiting>(_batchSize);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(_stopping.Token))
            {
                batch.Clear();
                while (batch.Count < _batchSize && _queue.Reader.TryRead(out var waiting))
                {
                    // A consumer that gave up (the bus is stopping) leaves its message unacknowledged: it comes back.
                    if (waiting.Cancel.IsCancellationRequested) waiting.Done.TrySetCanceled(waiting.Cancel);
                    else batch.Add(waiting);
                }
                if (batch.Count > 0) await StoreAsync(batch);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping: whatever still waits is cancelled below and redelivered by the broker.
        }
    }

    private async Task StoreAsync(IReadOnlyList<Waiting> batch)
    {
        try
        {
            var applied = await _handler.HandleAsync(batch.Select(w => w.Event).ToList(), "bus", _stopping.Token);
            for (var i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(applied[i]);
        }
        catch (Exception e) when (batch.Count > 1 && !LeadEventConsumerDefinition.MayPass(e) && !_stopping.IsCancellationRequested)
        {
            // A fault that will not pass by itself: each event alone, so only the one that causes it fails.
            foreach (var waiting in batch) await StoreAsync([waiting]);
        }
        catch (Exception e)
        {
            // Each consumer hands it to MassTransit's retry policy, which queues its event again.
            foreach (var waiting in batch) waiting.Done.TrySetException(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        await Task.WhenAll(_writers);
        while (_queue.Reader.TryRead(out var waiting)) waiting.Done.TrySetCanceled();
        _stopping.Dispose();
    }

    private sealed record Waiting(NurtureMessage Event, CancellationToken Cancel)
    {
        public TaskCompletionSource<AppliedEvent> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
