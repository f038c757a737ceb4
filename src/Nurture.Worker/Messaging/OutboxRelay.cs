using System.Diagnostics;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Publishes what the outbox holds, a batch at a time: claim the rows for a lease and commit, publish them with
/// publisher confirms (each with its stored id as the MassTransit message id), then mark them published. No
/// transaction or lock is held while the broker is talked to. A crash in between publishes the rows again with the
/// same ids once the lease runs out: at least once, never lost. The event handler stores its messages already claimed
/// for this relay and hands them over after each commit (<see cref="OutboxSignal"/>), so those skip the claim.
/// </summary>
public sealed partial class OutboxRelay(LeadStore store, IBus bus, BusSettings settings, TimeProvider clock, NurtureMetrics metrics, OutboxSignal signal,
    ILogger<OutboxRelay> log, BrokerHealthCheck? broker = null, OutboxPublisher? publisher = null) : BackgroundService
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How long one round may wait for the broker's confirms (Nurture:Bus:OutboxConfirmSeconds). A publish caught by a
    /// broker restart can wait for ever on a confirm that never comes (seen in the fault suite: the outbox stopped for
    /// good after RabbitMQ came back); the round gives up instead, its unconfirmed rows go back, and the next round
    /// publishes them on a new connection (OutboxPublisher). The round abandons those publishes and does not cancel them: the fault suite once saw every publish after the
    /// restart hang in the exchange declare on a loaded machine, after rounds had cancelled declares in flight, and an
    /// RPC cut short can leave a RabbitMQ channel out of step with its replies (rabbitmq-dotnet-client #1802). An
    /// abandoned publish ends on the client's own timeout instead.
    /// </summary>
    private TimeSpan RoundTimeout => TimeSpan.FromSeconds(settings.OutboxConfirmSeconds);
    /// <summary>
    /// The least time between the starts of two rounds while messages keep coming. At the rate of a drain or a dispatch
    /// a round per commit claimed and marked two or three rows at a time, two database round trips each; a round this long
    /// takes everything that arrived meanwhile, in one claim and one mark.
    /// </summary>
    private static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// Rounds look above a floor, so the rows published before are not walked again each round (their index entries
    /// stay until a vacuum; a drain walked tens of thousands a round). The floor trails the ids claimed by this long:
    /// ids are taken at insert and committed later, so a row below a claimed one may still come, and a commit that late
    /// is still found by the next rounds.
    /// </summary>
    private static readonly TimeSpan FloorLag = TimeSpan.FromSeconds(1);
    /// <summary>
    /// How often a round looks from the start instead: for rows committed later than <see cref="FloorLag"/>, rows whose
    /// lease ran out (a relay that died) and rows another relay held when this one passed them.
    /// </summary>
    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(10);

    private readonly string _claimer = $"{Environment.MachineName}/{Environment.ProcessId}/relay-{Guid.NewGuid():N}";
    private readonly Lock _floorGate = new();
    private readonly Queue<(long At, long LastId)> _rounds = new();
    private long _floor;
    private long _lastSweep = long.MinValue;
    private long _lastClaim;
    private long? _continueAfter;
    private List<Guid> _unmarked = [];

    /// <summary>How many messages handed over may wait for the relay before batches store theirs unclaimed instead.</summary>
    private int HandedLimit => settings.OutboxBatchSize * 4;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        signal.Listen(_claimer, Lease, HandedLimit, margin: RoundTimeout + TimeSpan.FromSeconds(5));
        try
        {
            await RelayAsync(stoppingToken);
        }
        finally
        {
            // What was handed over and not published goes back, for the next worker to claim at once rather than after
            // the lease; what was published and not yet marked is marked first.
            var left = signal.StopListening();
            try
            {
                if (_unmarked.Count > 0) await MarkAsync([], CancellationToken.None);
            }
            catch (Exception e)
            {
                LogNotMarked(log, e, _unmarked.Count);
            }
            await GiveBackAsync(left.Select(m => m.EventId).ToList());
        }
    }

    private async Task RelayAsync(CancellationToken stoppingToken)
    {
        var poll = TimeSpan.FromMilliseconds(settings.OutboxPollMs);
        while (!stoppingToken.IsCancellationRequested)
        {
            var published = 0;
            var started = Stopwatch.GetTimestamp();
            try
            {
                // While RabbitMQ is away nothing is claimed and nothing handed over: every publish in flight when it comes
                // back may hang on the recovered connection, and every later one behind it (rabbitmq-dotnet-client #1930).
                var answers = broker is null || await broker.AnswersAsync(stoppingToken);
                signal.Pause(!answers);
                if (answers) published = await PublishPendingAsync(stoppingToken);
                // What was handed over goes back to the outbox meanwhile, rather than wait in memory for the broker (an
                // erase in another worker rewrites the stored rows, not this copy).
                else await GiveBackAsync(signal.TakeAll().Select(m => m.EventId).ToList());
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogFailed(log, e, poll);
            }
            if (published >= settings.OutboxBatchSize) continue;
            if (published > 0)
            {
                if (Stopwatch.GetElapsedTime(started) is var took && took < Gather)
                {
                    await Task.Delay(Gather - took, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
                continue;
            }
            try
            {
                await signal.WaitAsync(poll, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Publishes one batch: the rows a claim finds, when rows were stored for claiming (a nudge), the last claim came
    /// back full, or the poll interval passed since the last claim (at most half a batch while messages handed over
    /// wait, so neither starves the other), then the messages handed over by this process's batches. Returns how many
    /// messages it took.
    /// </summary>
    public async Task<int> PublishPendingAsync(CancellationToken cancel)
    {
        // On RabbitMQ the relay publishes over a connection of its own (OutboxPublisher), in memory on the bus itself.
        var endpoint = publisher is null ? bus : await publisher.BusAsync(cancel);
        var pending = new List<(Guid Id, NurtureMessage? Message)>();
        var started = Stopwatch.GetTimestamp();
        if (signal.TakeNudge() || _continueAfter is not null || Stopwatch.GetElapsedTime(_lastClaim, started) >= TimeSpan.FromMilliseconds(settings.OutboxPollMs))
        {
            _lastClaim = started;
            var after = _continueAfter ?? Floor();
            var room = signal.Waiting > 0 ? Math.Max(1, settings.OutboxBatchSize / 2) : settings.OutboxBatchSize;
            try
            {
                var claimed = await store.ClaimOutboxAsync(_claimer, room, clock.GetUtcNow(), Lease, after, cancel);
                // A full claim may have left more: the next round goes on from its last row, whatever the floor says.
                _continueAfter = claimed.Count == room ? claimed[^1].Id : null;
                AdvanceFloor(started, claimed.Select(m => m.Id));
                pending.AddRange(claimed.Select(m => (m.MessageId, Read(m))));
            }
            catch (Exception e) when (signal.Waiting > 0 && !cancel.IsCancellationRequested)
            {
                // The database is away: what was handed over still goes out, and is marked once it answers.
                LogClaimFailed(log, e);
            }
        }
        // A row claimed above may also wait handed over (its lease ran out meanwhile): it goes out once.
        pending.AddRange(signal.Take(settings.OutboxBatchSize - pending.Count, clock.GetUtcNow())
            .Where(m => !pending.Exists(p => p.Id == m.EventId)).Select(m => (m.EventId, (NurtureMessage?)m)));
        if (pending.Count == 0)
        {
            if (_unmarked.Count > 0) await MarkAsync([], cancel);
            return 0;
        }
        var confirmed = new List<Guid>(pending.Count);
        try
        {
            await Task.WhenAll(pending.Where(m => m.Message is not null).Select(async m =>
            {
                await endpoint.Publish(m.Message!, m.Message!.GetType(), context => context.MessageId = m.Id, cancel);
                lock (confirmed) confirmed.Add(m.Id);
            })).WaitAsync(RoundTimeout, cancel);
        }
        catch (Exception e)
        {
            // Confirms that never came: the connection may be stuck for good (#1930); the next round publishes on a new one.
            if (e is TimeoutException) publisher?.Replace();
            // What the broker confirmed is marked; the rest goes back for the next round at once (a publish abandoned
            // here may still reach the broker: the same message id again, as after a crash).
            List<Guid> done;
            lock (confirmed) done = [.. confirmed];
            // The rows given back lie below the floor: the next rounds look from the start.
            lock (_floorGate)
            {
                _floor = 0;
                _rounds.Clear();
            }
            signal.Nudge();
            try
            {
                await MarkAsync(done, CancellationToken.None);
            }
            finally
            {
                await GiveBackAsync(pending.Where(m => m.Message is not null).Select(m => m.Id).Except(done).ToList());
            }
            throw;
        }
        List<Guid> all;
        lock (confirmed) all = [.. confirmed];
        var marked = await MarkAsync(all, cancel);
        // Marked ids raise the floor only when no claim has rows left below them.
        if (_continueAfter is null) AdvanceFloor(started, marked);
        return pending.Count;
    }

    /// <summary>Gives back messages this relay held and did not publish, for a claim; failing that, their rows wait for the lease.</summary>
    private async Task GiveBackAsync(List<Guid> messageIds)
    {
        if (messageIds.Count == 0) return;
        try
        {
            await store.ReleaseOutboxAsync(_claimer, messageIds, CancellationToken.None);
        }
        catch (Exception e)
        {
            LogNotReleased(log, e, messageIds.Count);
        }
    }

    /// <summary>
    /// Marks what the broker confirmed, with what an earlier round could not mark (the database away: it is marked when
    /// it answers, instead of published again after its lease); returns the ids of the rows marked.
    /// </summary>
    private async Task<IReadOnlyList<long>> MarkAsync(List<Guid> confirmed, CancellationToken cancel)
    {
        List<Guid> marking;
        lock (_floorGate)
        {
            marking = _unmarked.Count == 0 ? confirmed : [.. _unmarked, .. confirmed];
            _unmarked = [];
        }
        try
        {
            var marked = await store.MarkPublishedAsync(_claimer, marking, clock.GetUtcNow(), cancel);
            if (marked.Count > 0) metrics.Published(marked.Count);
            return marked;
        }
        catch
        {
            lock (_floorGate) _unmarked = [.. marking, .. _unmarked];
            throw;
        }
    }

    /// <summary>A claimed row's message, or null when it can never be published (the row stays for inspection).</summary>
    private NurtureMessage? Read(OutboxMessage m)
    {
        if (EventJson.TryParse(m.Payload, out var message, out var error)) return message;
        // Blocking the outbox behind it would stop everything else.
        LogUnreadable(log, m.MessageId, m.Type, error);
        return null;
    }

    /// <summary>The id this round looks above: the last id claimed or marked <see cref="FloorLag"/> ago or more, or 0 for a sweep.</summary>
    private long Floor()
    {
        var now = Stopwatch.GetTimestamp();
        lock (_floorGate)
        {
            while (_rounds.TryPeek(out var round) && Stopwatch.GetElapsedTime(round.At, now) >= FloorLag)
            {
                _floor = Math.Max(_floor, round.LastId);
                _rounds.Dequeue();
            }
            if (_lastSweep != long.MinValue && Stopwatch.GetElapsedTime(_lastSweep, now) < Sweep) return _floor;
            _lastSweep = now;
            return 0;
        }
    }

    /// <summary>
    /// Rows claimed or marked by the round that started at <paramref name="started"/>: the floor rises to the highest of
    /// them once <see cref="FloorLag"/> has passed. Marks count too, as most messages are handed over and never claimed.
    /// </summary>
    private void AdvanceFloor(long started, IEnumerable<long> ids)
    {
        var last = ids.DefaultIfEmpty(0).Max();
        if (last > 0) lock (_floorGate) _rounds.Enqueue((started, last));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Publishing the outbox failed; trying again in {Poll}")]
    private static partial void LogFailed(ILogger logger, Exception error, TimeSpan poll);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Claiming outbox rows failed; publishing what was handed over")]
    private static partial void LogClaimFailed(ILogger logger, Exception error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} published outbox messages could not be marked; they go out again once their lease runs out")]
    private static partial void LogNotMarked(ILogger logger, Exception error, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} outbox messages held and not published could not be given back; they go out once their lease runs out")]
    private static partial void LogNotReleased(ILogger logger, Exception error, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox message {Id} ({Type}) cannot be read and is skipped: {Reason}")]
    private static partial void LogUnreadable(ILogger logger, Guid id, string type, string reason);
}
