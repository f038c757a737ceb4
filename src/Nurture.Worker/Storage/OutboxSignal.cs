using System.Collections.Concurrent;
using Nurture.Contracts;

namespace Nurture.Worker.Storage;

/// <summary>A lease on outbox rows, written with them: whose they are (a relay) and until when.</summary>
public sealed record OutboxClaim(string Claimer, DateTimeOffset Until);

/// <summary>
/// Between the writers of the outbox and the relay in the same process. A writer that stored rows says so (a nudge), so
/// a committed message goes out now rather than at the next poll. While a relay runs here, a batch of lead events stores
/// its messages already claimed for it and hands it the messages themselves after the commit: the relay publishes them
/// without claiming and reading them back (the claim was a fifth of PostgreSQL's time in a drain). Nobody listening
/// (a command-line run) is fine: the rows are stored unclaimed and wait for the next worker.
/// </summary>
public sealed class OutboxSignal : IDisposable
{
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly ConcurrentQueue<NurtureMessage> _handed = new();
    private readonly Lock _gate = new();
    private Listener? _listener;
    private int _handedCount;
    private int _nudged;

    private sealed record Listener(string Claimer, TimeSpan Lease, int Limit);

    /// <summary>Rows were stored for the relay to claim.</summary>
    public void Nudge()
    {
        Volatile.Write(ref _nudged, 1);
        Wake();
    }

    /// <summary>
    /// The claim to store <paramref name="count"/> new messages under, or null when no relay listens here or the ones
    /// handed to it already wait in the limit (the broker is away or slow): then the rows are stored unclaimed.
    /// </summary>
    public OutboxClaim? Claim(DateTimeOffset now, int count)
    {
        var listener = Volatile.Read(ref _listener);
        if (listener is null || Volatile.Read(ref _handedCount) + count > listener.Limit) return null;
        return new OutboxClaim(listener.Claimer, now + listener.Lease);
    }

    /// <summary>
    /// Gives the relay the messages a transaction committed under <paramref name="claim"/>. A relay that stopped
    /// meanwhile does not take them: their rows wait for the lease to run out, as after a crash.
    /// </summary>
    public void Hand(OutboxClaim claim, IEnumerable<NurtureMessage> messages)
    {
        lock (_gate)
        {
            if (_listener?.Claimer != claim.Claimer) return;
            foreach (var m in messages)
            {
                _handed.Enqueue(m);
                Interlocked.Increment(ref _handedCount);
            }
        }
        Wake();
    }

    /// <summary>The relay starts taking messages handed to it under <paramref name="claimer"/>, at most <paramref name="limit"/> waiting.</summary>
    public void Listen(string claimer, TimeSpan lease, int limit)
    {
        lock (_gate) _listener = new Listener(claimer, lease, limit);
    }

    /// <summary>The relay stops; returns what was handed to it and not taken, for it to give back.</summary>
    public IReadOnlyList<NurtureMessage> StopListening()
    {
        lock (_gate)
        {
            _listener = null;
            return Take(int.MaxValue);
        }
    }

    /// <summary>Up to <paramref name="max"/> of the messages handed to the relay, oldest first.</summary>
    public IReadOnlyList<NurtureMessage> Take(int max)
    {
        var taken = new List<NurtureMessage>();
        while (taken.Count < max && _handed.TryDequeue(out var m))
        {
            taken.Add(m);
            Interlocked.Decrement(ref _handedCount);
        }
        return taken;
    }

    /// <summary>Whether rows were stored for claiming since the last call.</summary>
    public bool TakeNudge() => Interlocked.Exchange(ref _nudged, 0) == 1;

    /// <summary>Waits for a nudge, a hand-over or <paramref name="timeout"/>, whichever comes first.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancel) => _signal.WaitAsync(timeout, cancel);

    private void Wake()
    {
        try
        {
            if (_signal.CurrentCount == 0) _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already woken.
        }
    }

    public void Dispose() => _signal.Dispose();
}
