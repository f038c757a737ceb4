using Nurture.Worker.Storage;

namespace Nurture.Worker.Email;

/// <summary>
/// Records the sends of all of a dispatch's connections together (group commit). While one group is being written,
/// the sends that arrive wait and go into the next group: one transaction and one commit for them all, instead of one
/// each. Every connection still waits for its own send's record before it sends again, so a crash still sends at most
/// one email per connection twice; the group only shares the database's work.
/// </summary>
internal sealed class SendRecorder(LeadStore store, string claimer)
{
    /// <summary>Groups written at once: two keep both cores of a small machine busy when there are only two connections.</summary>
    private const int Writers = 2;

    private readonly Lock _gate = new();
    private List<Waiting> _waiting = [];
    private int _writers;

    /// <summary>Completes when the send is recorded: false when its claim was lost; faults when the group could not be written.</summary>
    public async Task<bool> RecordAsync(SentEmail send)
    {
        var waiting = new Waiting(send);
        bool wait;
        lock (_gate)
        {
            _waiting.Add(waiting);
            wait = _writers == Writers;
            if (!wait) _writers++;
        }
        if (wait) return await waiting.Done.Task;
        // A writer is free: this connection writes the group now (its own send and any that came meanwhile), and
        // leaves the groups after it to the thread pool so that it can send its next email.
        if (await WriteGroupAsync()) _ = Task.Run(WriteGroupsAsync);
        return await waiting.Done.Task;
    }

    private async Task WriteGroupsAsync()
    {
        while (await WriteGroupAsync())
        {
        }
    }

    /// <summary>Writes the sends waiting now; true when more came meanwhile (the caller writes them next), false when this writer stopped.</summary>
    private async Task<bool> WriteGroupAsync()
    {
        List<Waiting> group;
        lock (_gate)
        {
            // At most one send per connection waits, so a group is never larger than the connections.
            group = _waiting;
            _waiting = [];
        }
        // In step order, so two groups written at once lock their steps in the same order.
        group.Sort((a, b) => a.Send.Step.Id.CompareTo(b.Send.Step.Id));
        try
        {
            var marked = await store.RecordSentAsync(group.Select(w => w.Send).ToList(), claimer, CancellationToken.None);
            for (var i = 0; i < group.Count; i++) group[i].Done.TrySetResult(marked[i]);
        }
        catch (Exception) when (group.Count > 1)
        {
            // One send's trouble (a deadlock with an import cancelling steps, a row the database refuses) must not stop
            // every connection of the group: each is tried alone. A record is safe to repeat.
            foreach (var waiting in group) await RecordAloneAsync(waiting);
        }
        catch (Exception e)
        {
            group[0].Done.TrySetException(e);
        }
        lock (_gate)
        {
            if (_waiting.Count > 0) return true;
            _writers--;
            return false;
        }
    }

    private async Task RecordAloneAsync(Waiting waiting)
    {
        try
        {
            waiting.Done.TrySetResult((await store.RecordSentAsync([waiting.Send], claimer, CancellationToken.None))[0]);
        }
        catch (Exception e)
        {
            waiting.Done.TrySetException(e);
        }
    }

    private sealed class Waiting(SentEmail send)
    {
        public SentEmail Send { get; } = send;

        // Each connection goes on on a thread of its own, not on the one writing the next group.
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
