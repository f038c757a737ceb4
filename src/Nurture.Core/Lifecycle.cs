using System.Security.Cryptography;
using System.Text;
using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>A lead decided again from its history: the decision and every transition with the event that caused it.</summary>
public sealed record RebuiltLead(LeadDecision Decision, IReadOnlyList<(Guid Cause, StageTransition Transition)> Transitions);

public sealed record StageTransition(LeadStage From, LeadStage To, DateTimeOffset At, string Reason, string DefinitionVersion, IReadOnlyList<LeadStage> Skipped)
{
    /// <summary>How long the lead had been in <see cref="From"/>, for time-in-stage figures.</summary>
    public TimeSpan InStage { get; init; }
}

/// <summary>What nurture should do after a decision.</summary>
public enum NurtureChange
{
    None,
    /// <summary>Start the lead's track from its first step (a new lead, or a recycled one re-entering).</summary>
    Enrol,
    /// <summary>Cancel every pending step: a goal stage, an unsubscribe, a hard bounce, an erase.</summary>
    Exit,
}

/// <summary>
/// The domain's answer to one event: the lead after it, the transitions it caused, the messages to publish
/// and what nurture should do. An event that does not fit gets <see cref="Ignored"/> with the reason, never an exception.
/// </summary>
public sealed record LeadDecision(
    Lead Lead,
    ScoreCard Score,
    IReadOnlyList<StageTransition> Transitions,
    IReadOnlyList<LeadEvent> Outgoing,
    NurtureChange Nurture,
    string? Ignored)
{
    public string? NurtureReason { get; init; }
}

/// <summary>Lead → MQL → SAL → SQL → Customer, plus Disqualified and Recycled, driven by events and the definition.</summary>
public static class Lifecycle
{
    private static readonly LeadStage[] Funnel = [LeadStage.Lead, LeadStage.Mql, LeadStage.Sal, LeadStage.Sql, LeadStage.Customer];

    /// <summary>Every (from, to) pair the lifecycle can produce. Tests check that no decision leaves this table.</summary>
    public static IReadOnlySet<(LeadStage From, LeadStage To)> AllowedTransitions { get; } = new HashSet<(LeadStage, LeadStage)>
    {
        (LeadStage.Lead, LeadStage.Mql), (LeadStage.Recycled, LeadStage.Mql), (LeadStage.Mql, LeadStage.Lead),
        (LeadStage.Lead, LeadStage.Sal), (LeadStage.Mql, LeadStage.Sal), (LeadStage.Recycled, LeadStage.Sal),
        (LeadStage.Lead, LeadStage.Sql), (LeadStage.Mql, LeadStage.Sql), (LeadStage.Sal, LeadStage.Sql), (LeadStage.Recycled, LeadStage.Sql),
        (LeadStage.Lead, LeadStage.Customer), (LeadStage.Mql, LeadStage.Customer), (LeadStage.Sal, LeadStage.Customer),
        (LeadStage.Sql, LeadStage.Customer), (LeadStage.Recycled, LeadStage.Customer), (LeadStage.Disqualified, LeadStage.Customer),
        (LeadStage.Mql, LeadStage.Recycled), (LeadStage.Sal, LeadStage.Recycled), (LeadStage.Sql, LeadStage.Recycled),
        (LeadStage.Lead, LeadStage.Disqualified), (LeadStage.Mql, LeadStage.Disqualified), (LeadStage.Sal, LeadStage.Disqualified),
        (LeadStage.Sql, LeadStage.Disqualified), (LeadStage.Recycled, LeadStage.Disqualified),
    };

    /// <summary>Decide what <paramref name="e"/> means for the lead (null when Nurture has not seen it yet).</summary>
    public static LeadDecision Decide(Lead? current, LeadEvent e, Definition definition)
    {
        var at = e.OccurredAt;
        var lead = current ?? Lead.New(e.LeadId, at);
        if (e.LeadId != lead.Id) throw new ArgumentException($"Event {e.EventId} is for lead '{e.LeadId}', not '{lead.Id}'.", nameof(e));
        if (at < lead.FirstSeenAt) lead = lead with { FirstSeenAt = at };
        var step = new Step(lead, e, definition);

        switch (e)
        {
            case LeadCaptured c:
                step.Lead = step.Lead with { Profile = lead.Erased ? LeadProfile.From(c).Erased() : LeadProfile.From(c), Captured = true };
                if (!lead.Captured && !lead.Erased) step.Nurture(NurtureChange.Enrol, "new lead");
                step.Requalify(at);
                break;

            case LeadActivityRecorded a when Clicks.ByMachine(a):
                step.Ignore("machine click (link scanner or prefetch): kept in the history, not scored");
                break;

            case LeadActivityRecorded a:
                var name = Core.Activities.NameOf(a.Activity);
                var engagement = definition.Qualification.EngagementActivities.Contains(name, StringComparer.OrdinalIgnoreCase);
                var resetsDecay = definition.Scoring.DecayResetActivities.Contains(name, StringComparer.OrdinalIgnoreCase);
                step.Lead = step.Lead with
                {
                    Activities = lead.Activities.SetItem(a.Activity, lead.Activities.GetValueOrDefault(a.Activity) + 1),
                    LastActivityAt = resetsDecay && (lead.LastActivityAt is not { } last || last < at) ? at : lead.LastActivityAt,
                    LastDone = lead.LastDone.TryGetValue(a.Activity, out var done) && done > at ? lead.LastDone : lead.LastDone.SetItem(a.Activity, at),
                    EngagementsSinceRecycle = lead.EngagementsSinceRecycle + (engagement ? 1 : 0),
                };
                // An open adds its point but never makes an MQL on its own: only an engagement re-reads the definition.
                if (engagement) step.Requalify(at);
                break;

            case LeadAcceptedBySales:
                step.Move(LeadStage.Sal, "accepted by sales", from: [LeadStage.Lead, LeadStage.Mql, LeadStage.Recycled]);
                break;

            case LeadRejectedBySales r:
                if (step.Move(LeadStage.Recycled, $"rejected by sales: {r.Reason}", from: [LeadStage.Mql, LeadStage.Sal]))
                {
                    step.Lead = step.Lead with { RecycleReason = r.Reason, EngagementsSinceRecycle = 0 };
                    step.Nurture(NurtureChange.Enrol, "recycled into nurture");
                }
                break;

            case LeadQualifiedBySales:
                step.Move(LeadStage.Sql, "qualified by sales", from: [LeadStage.Lead, LeadStage.Mql, LeadStage.Sal, LeadStage.Recycled]);
                break;

            case DealWon w:
                if (lead.Stage == LeadStage.Customer)
                {
                    step.Ignore("already a customer; the deal's revenue is added");
                }
                else
                {
                    step.Move(LeadStage.Customer, $"deal won: {w.Revenue} {w.Currency}", from: [LeadStage.Lead, LeadStage.Mql, LeadStage.Sal, LeadStage.Sql, LeadStage.Recycled, LeadStage.Disqualified]);
                }
                step.Lead = step.Lead with { Revenue = step.Lead.Revenue + w.Revenue, DealsWon = step.Lead.DealsWon + 1 };
                break;

            case DealLost l:
                if (step.Move(LeadStage.Recycled, "deal lost" + (l.Reason is { } why ? $": {why}" : ""), from: [LeadStage.Sal, LeadStage.Sql]))
                {
                    step.Lead = step.Lead with { RecycleReason = l.Reason ?? "deal lost", EngagementsSinceRecycle = 0 };
                    step.Nurture(NurtureChange.Enrol, "recycled into nurture");
                }
                break;

            case LeadDisqualified d:
                step.Move(LeadStage.Disqualified, $"disqualified: {d.Reason}", from: [LeadStage.Lead, LeadStage.Mql, LeadStage.Sal, LeadStage.Sql, LeadStage.Recycled]);
                break;

            case LeadUnsubscribed:
                if (lead.Unsubscribed) step.Ignore("already unsubscribed");
                step.Lead = step.Lead with { Unsubscribed = true };
                step.Nurture(NurtureChange.Exit, "unsubscribed");
                break;

            case EmailBounced b when b.Kind == BounceKind.Hard:
                if (lead.HardBounced) step.Ignore("address already marked bounced");
                step.Lead = step.Lead with { HardBounced = true };
                step.Nurture(NurtureChange.Exit, "hard bounce");
                break;

            case EmailBounced:
                step.Ignore("soft bounce: recorded, the send is retried later");
                break;

            case LeadErased:
                step.Lead = step.Lead with { Profile = lead.Profile.Erased(), Erased = true, RecycleReason = lead.RecycleReason is null ? null : Erasure.Marker };
                step.Nurture(NurtureChange.Exit, "erased on request");
                break;

            default:
                step.Ignore($"{e.GetType().Name} is not a lead event Nurture acts on");
                break;
        }

        var decision = step.Finish();
        return IsLate(decision.Lead, e) ? decision : decision with { Lead = decision.Lead with { LastEventAt = e.OccurredAt, LastEventId = e.EventId } };
    }

    /// <summary>
    /// True when <paramref name="e"/> comes before the latest event already applied to the lead, in history order
    /// (time, then event id, as <see cref="Replay"/> orders them). Redelivery and competing consumers make this common.
    /// </summary>
    public static bool IsLate(Lead? lead, LeadEvent e) =>
        lead?.LastEventAt is { } last && (e.OccurredAt < last || e.OccurredAt == last && e.EventId.CompareTo(lead.LastEventId) < 0);

    /// <summary>Puts a lead's events in history order (time, then event id) and decides each in turn, as if they had arrived in order.</summary>
    public static IReadOnlyList<(LeadEvent Event, LeadDecision Decision)> Rebuild(IEnumerable<LeadEvent> history, Definition definition)
    {
        var ordered = history.DistinctBy(e => e.EventId).ToList();
        ordered.Sort(InHistoryOrder);
        var steps = new List<(LeadEvent, LeadDecision)>(ordered.Count);
        Lead? lead = null;
        foreach (var e in ordered)
        {
            var decision = Decide(lead, e, definition);
            steps.Add((e, decision));
            lead = decision.Lead;
        }
        return steps;
    }

    /// <summary>
    /// The decision for a late event: the lead's whole history (which includes <paramref name="late"/>) is decided again in
    /// order, so the result is what in-order delivery would have given. The transitions are the rebuilt history's; the
    /// messages are those of the rebuilt steps from the late event on; nurture changes by what differs from <paramref name="before"/>.
    /// </summary>
    public static RebuiltLead Redecide(Lead before, IEnumerable<LeadEvent> history, LeadEvent late, Definition definition)
    {
        var steps = Rebuild(history, definition).ToList();
        if ( !steps.Any(s => s.Event.EventId == late.EventId)) throw new ArgumentException($"The history of lead '{before.Id}' does not hold event {late.EventId}.", nameof(history));
        var after = steps[^1].Decision;
        var from = steps.FindIndex(s => s.Event.EventId == late.EventId);
        // Scores re-decided after the late event went out before under the same ids; one LeadScored of the final state,
        // identified by the late event, tells consumers the corrected score instead.
        var outgoing = steps.Skip(from).SelectMany(s => s.Decision.Outgoing).Where(m => m is not LeadScored).ToList();
        var at = steps[^1].Event.OccurredAt;
        if (after.Score.Total != Scoring.Score(before, at, definition).Total)
        {
            outgoing.Insert(0, new LeadScored
            {
                EventId = DerivedId(late.EventId, "rescored"), LeadId = before.Id, OccurredAt = at, Score = after.Score.Total,
                Behaviour = after.Score.Behaviour, Fit = after.Score.Fit, DefinitionVersion = definition.Version, Explanation = after.Score.Lines,
            });
        }
        var transitions = steps.SelectMany(s => s.Decision.Transitions.Select(t => (s.Event.EventId, t))).ToList();

        var (nurture, reason) = (NurtureChange.None, (string?)null);
        if (InNurture(before, definition) && !InNurture(after.Lead, definition)) (nurture, reason) = (NurtureChange.Exit, "left nurture when a late event re-ordered the history");
        else if (!InNurture(before, definition) && InNurture(after.Lead, definition) || after.Lead.Stage == LeadStage.Recycled && before.Stage != LeadStage.Recycled)
        {
            (nurture, reason) = (NurtureChange.Enrol, "entered nurture when a late event re-ordered the history");
        }
        var decision = new LeadDecision(after.Lead, after.Score, transitions.Select(t => t.t).ToList(), outgoing, nurture,
            after.Lead == before ? steps[from].Decision.Ignored ?? "nothing changed" : null) { NurtureReason = reason };
        return new RebuiltLead(decision, transitions);
    }

    private static bool InNurture(Lead lead, Definition definition) =>
        lead.Captured && !lead.Erased && !lead.Unsubscribed && !lead.HardBounced && !definition.Nurture.GoalStages.Contains(lead.Stage);

    private static int InHistoryOrder(LeadEvent a, LeadEvent b) =>
        a.OccurredAt != b.OccurredAt ? a.OccurredAt.CompareTo(b.OccurredAt) : a.EventId.CompareTo(b.EventId);

    /// <summary>
    /// Re-score at <paramref name="now"/> with no new event: an MQL sales has not accepted whose interest cooled below the
    /// definition's floor goes back to Lead, stamped with the moment its score fell below the floor, not the moment of the check.
    /// </summary>
    public static LeadDecision Rescore(Lead lead, DateTimeOffset now, Definition definition, Guid causeId)
    {
        var q = definition.Qualification;
        var score = Scoring.Score(lead, now, definition);
        if (lead.Stage == LeadStage.Mql && q.DemoteBelow > 0 && score.Total < q.DemoteBelow)
        {
            var at = FellBelow(lead, q.DemoteBelow, now, definition);
            var demotion = new Step(lead, new LeadActivityRecordedMarker(lead.Id, causeId, at), definition);
            demotion.Move(LeadStage.Lead, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"interest cooled: score fell below {q.DemoteBelow} at {at.UtcDateTime:yyyy-MM-dd HH:mm} UTC ({score.Total} at the check)"), from: [LeadStage.Mql]);
            return demotion.Finish(scored: false) with { Score = score };
        }
        var step = new Step(lead, new LeadActivityRecordedMarker(lead.Id, causeId, now), definition);
        step.Ignore("no change");
        return step.Finish(scored: false);
    }

    /// <summary>
    /// When decay took the score below <paramref name="floor"/>: behaviour decays as b·0.5^(days/half-life) from the last
    /// activity that resets decay while fit and penalties stay, so b·0.5^(d/h) + rest = floor gives d = h·log2(b / (floor − rest)).
    /// Never before the lead entered its stage, never after <paramref name="now"/>.
    /// </summary>
    public static DateTimeOffset FellBelow(Lead lead, double floor, DateTimeOffset now, Definition definition)
    {
        var at = now;
        var h = definition.Scoring.HalfLifeDays;
        if (h > 0 && lead.LastActivityAt is { } last)
        {
            var fresh = Scoring.Score(lead, last, definition);
            var rest = fresh.Fit + fresh.Negative;
            if (fresh.Behaviour > 0 && floor - rest > 0) at = last.AddDays(fresh.Behaviour + rest < floor ? 0 : h * Math.Log2(fresh.Behaviour / (floor - rest)));
        }
        if (at < lead.StageEnteredAt) at = lead.StageEnteredAt;
        return at > now ? now : at;
    }

    /// <summary>True when the definition calls this lead an MQL at <paramref name="now"/>; the reason says which condition failed.</summary>
    public static (bool Qualifies, string Reason) Qualifies(Lead lead, ScoreCard score, Definition definition, DateTimeOffset now)
    {
        var q = definition.Qualification;
        if (lead.Erased) return (false, "erased");
        if (score.Total < q.MqlThreshold) return (false, $"score {score.Total} below threshold {q.MqlThreshold}");
        var done = q.HighIntentActivities.Where(name => Core.Activities.TryParse(name, out var t) && lead.Activities.ContainsKey(t)).ToList();
        if (done.Count == 0) return (false, "no high-intent action yet");
        var intent = done.FirstOrDefault(name => ShowsIntent(lead, name, q, now));
        if (intent is null) return (false, $"high intent expired: {string.Join(", ", done)} longer ago than its window (Qualification:IntentWindowDays)");
        if (score.Fit < q.MinimumFit) return (false, $"fit {score.Fit} below minimum {q.MinimumFit}");
        if (lead.EngagementsSinceRecycle < q.MinimumEngagements) return (false, $"{lead.EngagementsSinceRecycle} engagements, the guard asks for {q.MinimumEngagements}");
        return (true, $"score {score.Total} ≥ {q.MqlThreshold}, high intent ({intent}), fit {score.Fit} ≥ {q.MinimumFit}, {lead.EngagementsSinceRecycle} engagements");
    }

    /// <summary>A high-intent activity shows intent for its window after it last happened (no window: for good).</summary>
    private static bool ShowsIntent(Lead lead, string name, QualificationRules q, DateTimeOffset now)
    {
        if (!q.IntentWindowDays.TryGetValue(name, out var days) || !Core.Activities.TryParse(name, out var type)) return true;
        // A lead stored before the windows existed has no LastDone: its latest activity stands in.
        var last = lead.LastDone.TryGetValue(type, out var at) ? at : lead.LastActivityAt ?? lead.FirstSeenAt;
        return now - last <= TimeSpan.FromDays(days);
    }

    /// <summary>A deterministic id for a message caused by another, so a redelivered event republishes the same ids.</summary>
    public static Guid DerivedId(Guid cause, string purpose)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{cause:N}/{purpose}"), hash);
        var bytes = hash[..16];
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x50); // version 5 style, name-based
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }

    private sealed record LeadActivityRecordedMarker : LeadEvent
    {
        [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
        public LeadActivityRecordedMarker(string leadId, Guid eventId, DateTimeOffset at)
        {
            LeadId = leadId;
            EventId = eventId;
            OccurredAt = at;
        }
    }

    /// <summary>One decision being built: the lead, its transitions and outgoing messages.</summary>
    private sealed class Step(Lead before, LeadEvent cause, Definition definition)
    {
        private readonly Lead _before = before;
        private readonly List<StageTransition> _transitions = [];
        private readonly List<LeadEvent> _outgoing = [];
        private NurtureChange _nurture;
        private string? _nurtureReason;
        private string? _ignored;

        public Lead Lead { get; set; } = before;


        public void Ignore(string reason) => _ignored ??= reason;

        public void Nurture(NurtureChange change, string reason)
        {
            _nurture = change;
            _nurtureReason = reason;
        }

        public bool Move(LeadStage to, string reason, LeadStage[] from)
        {
            var stage = Lead.Stage;
            if (stage == to)
            {
                Ignore($"already {to}");
                return false;
            }
            if (!from.Contains(stage))
            {
                Ignore($"a {stage} lead cannot move to {to} ({reason})");
                return false;
            }
            var at = cause.OccurredAt;
            var skipped = Skipped(stage, to);
            var transition = new StageTransition(stage, to, at, skipped.Length == 0 ? reason : $"{reason}; skipped {string.Join(", ", skipped)}", definition.Version, skipped)
            {
                InStage = at > Lead.StageEnteredAt ? at - Lead.StageEnteredAt : TimeSpan.Zero,
            };
            _transitions.Add(transition);
            Lead = Lead with
            {
                Stage = to,
                StageEnteredAt = at,
                DefinitionVersion = definition.Version,
                FirstMqlAt = to == LeadStage.Mql ? Lead.FirstMqlAt ?? at : Lead.FirstMqlAt,
                Furthest = Array.IndexOf(Funnel, to) > Array.IndexOf(Funnel, Lead.Furthest) ? to : Lead.Furthest,
            };
            _outgoing.Add(new LeadStageChanged
            {
                EventId = DerivedId(cause.EventId, $"stage:{to}"),
                LeadId = Lead.Id,
                OccurredAt = at,
                From = stage,
                To = to,
                Reason = transition.Reason,
                DefinitionVersion = definition.Version,
                Source = Lead.Profile.Source,
                Skipped = skipped,
            });
            if (definition.Nurture.GoalStages.Contains(to)) Nurture(NurtureChange.Exit, $"reached {to}");
            return true;
        }

        /// <summary>A Lead or Recycled lead that now meets the definition becomes an MQL and is handed to sales.</summary>
        public void Requalify(DateTimeOffset at)
        {
            if (Lead.Stage is not (LeadStage.Lead or LeadStage.Recycled)) return;
            var score = Scoring.Score(Lead, at, definition);
            var (qualifies, reason) = Qualifies(Lead, score, definition, at);
            if (!qualifies || !Move(LeadStage.Mql, "qualified: " + reason, from: [LeadStage.Lead, LeadStage.Recycled])) return;
            _outgoing.Add(new LeadHandedToSales
            {
                EventId = DerivedId(cause.EventId, "handed-to-sales"),
                LeadId = Lead.Id,
                OccurredAt = at,
                Score = score.Total,
                DefinitionVersion = definition.Version,
                Explanation = score.Lines,
                Source = Lead.Profile.Source,
            });
        }

        public LeadDecision Finish(bool scored = true)
        {
            var at = cause.OccurredAt;
            var score = Scoring.Score(Lead, at, definition);
            if (scored && score.Total != Scoring.Score(_before, at, definition).Total)
            {
                _outgoing.Insert(0, new LeadScored
                {
                    EventId = DerivedId(cause.EventId, "scored"),
                    LeadId = Lead.Id,
                    OccurredAt = at,
                    Score = score.Total,
                    Behaviour = score.Behaviour,
                    Fit = score.Fit,
                    DefinitionVersion = definition.Version,
                    Explanation = score.Lines,
                });
            }
            var unchanged = _transitions.Count == 0 && _nurture == NurtureChange.None && Lead == _before;
            return new LeadDecision(Lead, score, _transitions, _outgoing, _nurture, unchanged ? _ignored ?? "nothing changed" : null) { NurtureReason = _nurtureReason };
        }

        private static LeadStage[] Skipped(LeadStage from, LeadStage to)
        {
            var start = from == LeadStage.Recycled ? 0 : Array.IndexOf(Funnel, from);
            var end = Array.IndexOf(Funnel, to);
            if (start < 0 || end < 0 || end <= start + 1) return [];
            return Funnel[(start + 1)..end];
        }
    }
}
