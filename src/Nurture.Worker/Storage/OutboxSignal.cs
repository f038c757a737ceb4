namespace Nurture.Worker.Storage;

/// <summary>
/// Says "the outbox has new rows" to whoever publishes it (the relay), so a committed message goes out now rather than
/// at the next poll. Nobody listening (a command-line run) is fine: the rows wait for the next worker.
/// </summary>
public sealed class OutboxSignal : IDisposable
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Nudge()
    {
        try
        {
            if (_signal.CurrentCount == 0) _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already nudged.
        }
    }

    /// <summary>Waits for a nudge or for <paramref name="timeout"/>, whichever comes first.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancel) => _signal.WaitAsync(timeout, cancel);

    public void Dispose() => _signal.Dispose();
}
