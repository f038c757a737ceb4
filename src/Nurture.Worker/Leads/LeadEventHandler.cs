using System.Data.Common;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Leads;

/// <summary>What happened to one event: applied (with the domain's decision), a duplicate of one applied before, or refused.</summary>
public sealed record AppliedEvent(NurtureMessage Event, bool Duplicate, LeadDecision? Decision)
{
    /// <summary>A late event: the decision holds the lead's whole re-decided history, not only what this event changed.</summary>
    public bool Late { get; init; }

    /// <summary>Why the database refused this event for good; it is kept in rejected_events and the rest of its batch is stored.</summary>
    public string? Refused { get; init; }
}

/// <summary>
/// The story of lead events, for every way in (the bus, HTTP, `ingest`, unsubscribe links, bounces, the jobs):
/// load the batch's leads → decide each event with the domain, in the order they happened → save the leads, their history,
/// transitions, outgoing messages (the outbox) and nurture steps in one transaction → hand the messages to the relay → count it.
/// A batch costs a handful of round trips, whatever its size.
/// </summary>
public sealed partial class LeadEventHandler(LeadRecords records, LeadStore store, Definition definition, TimeProvider clock, NurtureMetrics metrics,
    OutboxSignal outbox, IOptions<ImportOptions> import, ILogger<LeadEventHandler> log)
{
    private readonly TimeSpan _grace = TimeSpan.FromHours(import.Value.GraceHours);

    /// <summary>
    /// Handles a batch once. A version conflict or a database error that may pass is thrown for the caller's retry policy
    /// (MassTransit's, on the bus); an event the database refuses for good is recorded with its reason and the rest of
    /// its batch is stored.
    /// </summary>
    public async Task<IReadOnlyList<AppliedEvent>> HandleAsync(IReadOnlyList<NurtureMessage> events, string origin, CancellationToken cancel, EventMode mode = EventMode.Live)
    {
        IReadOnlyList<AppliedEvent> applied;
        try
        {
            applied = await DecideAndSaveAsync(events, mode, cancel);
            metrics.Batch(origin, events.Count);
        }
        catch (DbException e) when (SqlDialect.Refusal(e) is not null)
        {
            applied = await OneByOneAsync(events, origin, mode, cancel);
        }
        metrics.Applied(applied);
        return applied;
    }

    /// <summary>
    /// For the ways in that have no broker to redeliver (HTTP, `ingest`, links, jobs): a version conflict or a busy
    /// database is tried again a few times here before it reaches the caller.
    /// </summary>
    public async Task<IReadOnlyList<AppliedEvent>> HandleNowAsync(IReadOnlyList<NurtureMessage> events, string origin, CancellationToken cancel, EventMode mode = EventMode.Live)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await HandleAsync(events, origin, cancel, mode);
            }
            catch (Exception e) when (attempt < 8 && MayPass(e) && !cancel.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 25 * attempt)), cancel);
            }
        }
    }

    /// <summary>Errors that pass by themselves: a version conflict, a deadlock, a busy or unreachable database, a timeout.</summary>
    public static bool MayPass(Exception e) =>
        e is LeadVersionConflictException or TimeoutException || e is DbException d && (SqlDialect.IsTransient(d) || SqlDialect.Refusal(d) is null);

    private async Task<IReadOnlyList<AppliedEvent>> DecideAndSaveAsync(IReadOnlyList<NurtureMessage> events, EventMode mode, CancellationToken cancel)
    {
        await using var transaction = await records.BeginAsync(clock.GetUtcNow(), cancel);

        // Load: every lead of the batch (locked until commit, with its last nurture enrolment), then the inbox: a copy of
        // an event another worker was storing for the same lead is seen as stored once that worker is through.
        var (stored, enrolments, known) = await transaction.LoadAsync(events.OfType<LeadEvent>().Select(e => e.LeadId).ToList(), events.Select(e => e.EventId).ToList());
        var batch = new Batch(stored, enrolments, mode, transaction.ReceivedAt);

        // Decide: the batch's events in the order they happened (arrival order among equals), each against the lead as
        // the events before it left it. Concurrent deliveries can hand a lead's events over out of order; inside one
        // batch that costs nothing, where deciding in arrival order would decide the lead's history again.
        var results = new AppliedEvent[events.Count];
        var seen = new HashSet<Guid>(known);
        foreach (var i in Enumerable.Range(0, events.Count).OrderBy(i => events[i].OccurredAt))
        {
            var e = events[i];
            results[i] = seen.Add(e.EventId) ? await DecideAsync(e, batch, transaction) : new AppliedEvent(e, Duplicate: true, Decision: null);
        }
        var changes = batch.Finished();
        if (mode == EventMode.History)
        {
            // History is recorded, not announced: subscribers hear of what happens from now on, not of every past step.
            changes.Outbox.Clear();
        }

        // Save: leads, history, transitions, outbox and nurture steps together, or nothing. The outgoing messages are
        // stored claimed for this process's relay where one runs, and handed to it once they are committed. Not after a
        // late event (its history's messages come again under the ids they were stored with, and a claim publishes only
        // the new rows) nor with an erase (the stored rows are blanked; a claim publishes those).
        var messages = changes.Outbox.DistinctBy(m => m.EventId).ToList();
        var claim = messages.Count > 0 && changes.TransitionsReplaced.Count == 0 && changes.Erased.Count == 0
            ? outbox.LeaseFor(transaction.ReceivedAt, messages.Count)
            : null;
        await transaction.SaveAsync(changes, claim);
        await transaction.CommitAsync();
        if (changes.Erased.Count > 0) outbox.Blank(changes.Erased, transaction.ReceivedAt);
        if (claim is not null) outbox.Hand(claim, messages);
        else if (messages.Count > 0) outbox.Nudge();
        return results;
    }

    private async Task<AppliedEvent> DecideAsync(NurtureMessage message, Batch batch, LeadTransaction transaction)
    {
        var changes = batch.Changes;
        if (message is not LeadEvent e)
        {
            if (message is CampaignSpendRecorded spend) changes.Spend.Add(spend);
            changes.Events.Add(new EventWrite(message, null, message is CampaignSpendRecorded ? "spend recorded" : "ignored: not a lead event"));
            return new AppliedEvent(message, false, null);
        }

        var before = batch.Lead(e.LeadId);
        // After an erase, what arrives about the lead is stored and decided without its free texts.
        if (before is { Erased: true }) e = Erasure.Blank(e);
        if (before is not null && Lifecycle.IsLate(before, e)) return await DecideLateAsync(e, before, batch, transaction);

        var decision = Lifecycle.Decide(before, e, definition);
        changes.Events.Add(new EventWrite(e, e.LeadId, Outcome(decision)));
        batch.Keep(decision);
        foreach (var t in decision.Transitions) changes.Transitions.Add(new TransitionWrite(e.LeadId, e.EventId, t, decision.Lead.Profile.Source));
        foreach (var m in decision.Outgoing) batch.Publish(m);
        Nurture(e, decision, batch);
        SideRecords(e, before, decision, changes);
        return new AppliedEvent(e, false, decision);
    }

    /// <summary>
    /// An event older than the lead's latest: its history (stored, plus this batch's events so far) is decided again in
    /// order, so any delivery order ends where in-order delivery would. The rebuilt transitions replace the stored ones.
    /// </summary>
    private async Task<AppliedEvent> DecideLateAsync(LeadEvent late, Lead before, Batch batch, LeadTransaction transaction)
    {
        var changes = batch.Changes;
        var history = (await transaction.HistoryAsync(late.LeadId)).OfType<LeadEvent>()
            .Concat(changes.Events.Where(w => w.LeadId == late.LeadId).Select(w => w.Event).OfType<LeadEvent>())
            .Append(late);
        var rebuilt = Lifecycle.Redecide(before, history, late, definition);
        var decision = rebuilt.Decision;
        changes.Events.Add(new EventWrite(late, late.LeadId, "late, history decided again: " + Outcome(decision)));
        batch.Keep(decision);
        changes.Transitions.RemoveAll(t => t.LeadId == late.LeadId);
        changes.TransitionsReplaced.Add(late.LeadId);
        foreach (var (cause, t) in rebuilt.Transitions) changes.Transitions.Add(new TransitionWrite(late.LeadId, cause, t, decision.Lead.Profile.Source));
        foreach (var m in decision.Outgoing) batch.Publish(m);
        Nurture(late, decision, batch);
        SideRecords(late, before, decision, changes);
        return new AppliedEvent(late, false, decision) { Late = true };
    }

    private void Nurture(LeadEvent cause, LeadDecision decision, Batch batch)
    {
        if (batch.Mode == EventMode.History) return;
        switch (decision.Nurture)
        {
            case NurtureChange.Exit:
                batch.CancelSteps(cause.LeadId, decision.NurtureReason ?? "left nurture");
                break;
            case NurtureChange.Enrol:
                // A recycled lead re-enters its track as a new enrolment; what was pending from the last one is cancelled.
                // A lead never enrolled before has nothing to cancel, so new leads cost no statement here.
                if (batch.EnrolledBefore(cause.LeadId)) batch.CancelSteps(cause.LeadId, "re-enrolled");
                var enrolment = batch.NextEnrolment(cause.LeadId);
                if (NurturePlan.First(decision.Lead, cause.OccurredAt, definition) is { } first)
                {
                    var step = new StepWrite(cause.LeadId, first.Track, enrolment, first.Step, first.Template, first.DueAt);
                    batch.Changes.Steps.Add(step);
                    if (first.DueAt < batch.Now - _grace)
                    {
                        // A lead captured long ago is not welcomed now: the step is kept as skipped and the track ends there.
                        step.CancelledBecause = "skipped: stale on import";
                        break;
                    }
                    batch.Publish(new NurtureEmailScheduled
                    {
                        EventId = Lifecycle.DerivedId(cause.EventId, $"scheduled:{first.Track}:{enrolment}:{first.Step}"),
                        LeadId = cause.LeadId, OccurredAt = cause.OccurredAt, Track = first.Track, Step = first.Step, Template = first.Template, DueAt = first.DueAt,
                    });
                }
                break;
        }
    }

    private void SideRecords(LeadEvent e, Lead? before, LeadDecision decision, LeadChanges changes)
    {
        var email = decision.Lead.Profile.Email ?? before?.Profile.Email;
        switch (e)
        {
            case DealWon won:
                changes.Deals.Add(won);
                break;
            case LeadActivityRecorded clicked when Clicks.EmailStep(clicked, definition) is var (track, step):
                changes.Clicks.Add(new ClickWrite(clicked.EventId, clicked.LeadId, track, step, clicked.OccurredAt, Clicks.ByMachine(clicked)));
                break;
            case LeadUnsubscribed when email is not null:
                changes.Suppressions.TryAdd(LeadStore.EmailHash(email), ("unsubscribed", e.OccurredAt));
                break;
            case EmailBounced { Kind: BounceKind.Hard } when email is not null:
                changes.Suppressions.TryAdd(LeadStore.EmailHash(email), ("hard bounce", e.OccurredAt));
                break;
            case LeadErased:
            case LeadCaptured when decision.Lead.Erased:
                // Also a capture that arrives after the erase: its stored copy is blanked too.
                changes.Erased.Add(e.LeadId);
                break;
        }
    }

    /// <summary>The batch failed on a value the database refuses: each event alone, so only the refused ones are left out.</summary>
    private async Task<IReadOnlyList<AppliedEvent>> OneByOneAsync(IReadOnlyList<NurtureMessage> events, string origin, EventMode mode, CancellationToken cancel)
    {
        var applied = new List<AppliedEvent>(events.Count);
        foreach (var e in events)
        {
            try
            {
                applied.AddRange(await DecideAndSaveAsync([e], mode, cancel));
            }
            catch (DbException error) when (SqlDialect.Refusal(error) is { } refusal)
            {
                var reason = $"the database refused it: {refusal}.";
                LogRefused(log, e.GetType().Name, e.EventId, reason);
                await store.RecordRejectedAsync(origin, reason, EventJson.Write(e), clock.GetUtcNow(), cancel);
                metrics.Rejected(origin);
                applied.Add(new AppliedEvent(e, false, null) { Refused = reason });
            }
        }
        return applied;
    }

    /// <summary>
    /// Re-scores every MQL at <paramref name="now"/> and stores the demotions (an MQL whose interest cooled goes back to
    /// Lead). A lead another writer changed meanwhile is left for the next run. Returns how many were demoted.
    /// </summary>
    public async Task<int> RescoreMqlsAsync(DateTimeOffset now, CancellationToken cancel)
    {
        var demoted = 0;
        foreach (var (lead, version) in await store.MqlsAsync(cancel))
        {
            var cause = Lifecycle.DerivedId(Guid.Empty, $"rescore:{lead.Id}:{lead.StageEnteredAt:O}");
            var decision = Lifecycle.Rescore(lead, now, definition, cause);
            if (decision.Transitions.Count == 0) continue;
            try
            {
                await using var transaction = await records.BeginAsync(now, cancel);
                var batch = new Batch(new Dictionary<string, StoredLead> { [lead.Id] = new(lead, version) }, new Dictionary<string, int>(), EventMode.Live, now);
                batch.Keep(decision);
                foreach (var t in decision.Transitions) batch.Changes.Transitions.Add(new TransitionWrite(lead.Id, cause, t, lead.Profile.Source));
                foreach (var m in decision.Outgoing) batch.Publish(m);
                await transaction.SaveAsync(batch.Finished());
                await transaction.CommitAsync();
                demoted++;
            }
            catch (LeadVersionConflictException)
            {
                // Changed by an event meanwhile; the next run looks again.
            }
        }
        if (demoted > 0) outbox.Nudge();
        return demoted;
    }

    private static string Outcome(LeadDecision d) => d.Ignored is { } why
        ? $"ignored: {why}"
        : d.Transitions.Count > 0 ? string.Join("; ", d.Transitions.Select(t => $"{t.From}→{t.To}")) : $"score {d.Score.Total}";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Type} {EventId}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string type, Guid eventId, string reason);

    /// <summary>The leads of one batch as its events leave them, and what the batch will write.</summary>
    private sealed class Batch(IReadOnlyDictionary<string, StoredLead> stored, IReadOnlyDictionary<string, int> enrolments, EventMode mode, DateTimeOffset now)
    {
        public EventMode Mode { get; } = mode;

        /// <summary>When the batch is handled: what "already overdue" is measured against.</summary>
        public DateTimeOffset Now { get; } = now;

        private readonly Dictionary<string, Lead> _current = new(StringComparer.Ordinal);
        private readonly Dictionary<string, int> _enrolments = new(enrolments, StringComparer.Ordinal);

        public LeadChanges Changes { get; } = new();

        public Lead? Lead(string id) => _current.TryGetValue(id, out var lead) ? lead : stored.GetValueOrDefault(id)?.Lead;

        /// <summary>The lead after a decision: written once for the batch, at the version it was read at.</summary>
        public void Keep(LeadDecision decision)
        {
            var lead = decision.Lead;
            _current[lead.Id] = lead;
            Changes.Leads[lead.Id] = new LeadWrite(lead, decision.Score.Total, decision.Score.Fit, stored.GetValueOrDefault(lead.Id)?.Version);
        }

        /// <summary>Queues a message; of a lead's score changes only the last is published (see <see cref="Finished"/>).</summary>
        public void Publish(NurtureMessage message) => Changes.Outbox.Add(message);

        /// <summary>
        /// What the batch writes: a lead's score is published once per batch, as it stands at the end of the batch, in
        /// the place of its last change. One pass from the end; dropping the earlier score at each change searched the
        /// whole outbox every time (6 % of `ingest`'s CPU in batches of 2,000).
        /// </summary>
        public LeadChanges Finished()
        {
            var scored = new HashSet<string>(StringComparer.Ordinal);
            var kept = Enumerable.Reverse(Changes.Outbox).Where(m => m is not LeadScored s || scored.Add(s.LeadId)).Reverse().ToList();
            Changes.Outbox.Clear();
            Changes.Outbox.AddRange(kept);
            return Changes;
        }

        public void CancelSteps(string leadId, string reason)
        {
            Changes.StepsCancelled.TryAdd(leadId, reason);
            foreach (var step in Changes.Steps.Where(s => s.LeadId == leadId && s.CancelledBecause is null)) step.CancelledBecause = reason;
        }

        public bool EnrolledBefore(string leadId) => _enrolments.ContainsKey(leadId);

        public int NextEnrolment(string leadId) => _enrolments[leadId] = _enrolments.GetValueOrDefault(leadId) + 1;
    }
}
