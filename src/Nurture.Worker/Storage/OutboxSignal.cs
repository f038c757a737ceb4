using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

/// <summary>A lease on outbox rows, written with them: whose they are (a relay) and until when.</summary>
public sealed record OutboxClaim(string Claimer, DateTimeOffset Until);

/// <summary>
/// Between the writers of the outbox and the relay in the same process. A writer that stored rows says so (a nudge), so
/// a committed message goes out now rather than at the next poll. While a relay runs here and the broker answers, a
/// batch of lead events stores its messages already claimed for it and hands it the messages themselves after the
/// commit: the relay publishes them without claiming and reading them back (the claims were a fifth of PostgreSQL's
/// time in a drain). Nobody listening (a command-line run) is fine: the rows are stored unclaimed and wait for the next
/// worker.
/// </summary>
public sealed class OutboxSignal : IDisposable
{
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly Lock _gate = new();
    private readonly Queue<(NurtureMessage Message, DateTimeOffset Until)> _handed = new();
    private Listener? _listener;
    private int _nudged;
    private volatile bool _paused;

    private sealed record Listener(string Claimer, TimeSpan Lease, int Limit, TimeSpan Margin);

    /// <summary>Leads erased lately, until when: a batch that read one before its erase may hand over after it.</summary>
    private readonly Dictionary<string, DateTimeOffset> _erased = new(StringComparer.Ordinal);

    /// <summary>Rows were stored for the relay to claim.</summary>
    public void Nudge()
    {
        Volatile.Write(ref _nudged, 1);
        Wake();
    }

    /// <summary>
    /// The lease to store <paramref name="count"/> new messages under, or null when no relay listens here, the broker
    /// does not answer, or about as many as the relay takes are waiting already: then the rows are stored unclaimed.
    /// </summary>
    public OutboxClaim? LeaseFor(DateTimeOffset now, int count)
    {
        lock (_gate)
        {
            if (_listener is not { } listener || _paused || _handed.Count + count > listener.Limit) return null;
            return new OutboxClaim(listener.Claimer, now + listener.Lease);
        }
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
            foreach (var m in messages) _handed.Enqueue((Erased(m, claim.Until) ? Erasure.Blank(m) : m, claim.Until));
        }
        Wake();
    }

    /// <summary>
    /// Blanks what waits about leads just erased, as the erase rewrote their stored rows in its transaction (at
    /// <paramref name="now"/>), and what a batch that read them before hands over after it. Other workers' relays are
    /// not reached: what they hold goes out within a round or so.
    /// </summary>
    public void Blank(IReadOnlySet<string> leadIds, DateTimeOffset now)
    {
        lock (_gate)
        {
            foreach (var (id, until) in _erased.ToList()) if (until < now) _erased.Remove(id);
            // A batch that read the lead before the erase began before it, so its lease ends within one lease of it.
            foreach (var id in leadIds) _erased[id] = now + 2 * (_listener?.Lease ?? TimeSpan.Zero);
            for (var n = _handed.Count; n > 0; n--)
            {
                var waiting = _handed.Dequeue();
                _handed.Enqueue(waiting.Message is LeadEvent about && leadIds.Contains(about.LeadId) ? (Erasure.Blank(waiting.Message), waiting.Until) : waiting);
            }
        }
    }

    private bool Erased(NurtureMessage message, DateTimeOffset leaseUntil) =>
        message is LeadEvent about && _erased.TryGetValue(about.LeadId, out var until) && leaseUntil <= until;

    /// <summary>
    /// The relay takes hand-overs under <paramref name="claimer"/>, about <paramref name="limit"/> waiting at most; a
    /// message it would take less than <paramref name="margin"/> (a round) before its lease ends is left to a claim.
    /// </summary>
    public void Listen(string claimer, TimeSpan lease, int limit, TimeSpan margin)
    {
        lock (_gate) _listener = new Listener(claimer, lease, limit, margin);
    }

    /// <summary>While the broker does not answer, batches store their messages unclaimed, for a claim once it does.</summary>
    public void Pause(bool paused) => _paused = paused;

    /// <summary>The relay stops; returns what was handed to it and not taken, for it to give back.</summary>
    public IReadOnlyList<NurtureMessage> StopListening()
    {
        lock (_gate)
        {
            _listener = null;
            return TakeAll();
        }
    }

    /// <summary>Everything handed over and not taken yet, lease or not (for the relay to give back).</summary>
    public IReadOnlyList<NurtureMessage> TakeAll()
    {
        lock (_gate)
        {
            var left = new List<NurtureMessage>();
            while (_handed.TryDequeue(out var waiting)) left.Add(waiting.Message);
            return left;
        }
    }

    /// <summary>Whether a relay in this process takes hand-overs (paused or not).</summary>
    public bool Listening => Volatile.Read(ref _listener) is not null;

    /// <summary>How many messages handed over wait for the relay.</summary>
    public int Waiting
    {
        get
        {
            lock (_gate) return _handed.Count;
        }
    }

    /// <summary>
    /// Up to <paramref name="max"/> of the messages handed over, oldest first. Those whose lease ends within the margin
    /// of <paramref name="now"/> are dropped: a claim takes them once it has run out.
    /// </summary>
    public IReadOnlyList<NurtureMessage> Take(int max, DateTimeOffset now)
    {
        var taken = new List<NurtureMessage>();
        lock (_gate)
        {
            var margin = _listener?.Margin ?? TimeSpan.Zero;
            while (taken.Count < max && _handed.TryDequeue(out var waiting))
            {
                if (waiting.Until - now >= margin) taken.Add(waiting.Message);
            }
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
