using Nurture.Contracts;

namespace Nurture.Core;

public sealed record LeadOutcome(string LeadId, LeadStage Stage, string Source, double Score, IReadOnlyList<ScoreLine> Explanation, IReadOnlyList<StageTransition> Transitions);

public sealed record ReplaySummary(
    int Events,
    int Duplicates,
    int Ignored,
    IReadOnlyDictionary<LeadStage, int> LeadsPerStage,
    IReadOnlyList<FunnelStage> Funnel,
    ValueEstimate MqlValue,
    IReadOnlyList<ValueEstimate> MqlValueBySource,
    IReadOnlyDictionary<string, SpendReturn> SpendByChannel);

public sealed record ReplayResult(IReadOnlyList<LeadOutcome> Leads, ReplaySummary Summary);

/// <summary>
/// Runs a set of events through the domain. Events are put in time order (ties by event id) and de-duplicated
/// by event id first, so the same events in any order and with any redeliveries give the same result.
/// </summary>
public static class Replay
{
    public static ReplayResult Run(IEnumerable<NurtureMessage> events, Definition definition, DateTimeOffset? now = null)
    {
        var seen = new HashSet<Guid>();
        var ordered = new List<NurtureMessage>();
        var duplicates = 0;
        foreach (var e in events)
        {
            if (seen.Add(e.EventId)) ordered.Add(e);
            else duplicates++;
        }
        ordered.Sort((a, b) => a.OccurredAt != b.OccurredAt ? a.OccurredAt.CompareTo(b.OccurredAt) : a.EventId.CompareTo(b.EventId));
        var at = now ?? (ordered.Count > 0 ? ordered[^1].OccurredAt : DateTimeOffset.UnixEpoch);

        var leads = new Dictionary<string, Lead>(StringComparer.Ordinal);
        var transitions = new Dictionary<string, List<StageTransition>>(StringComparer.Ordinal);
        var spend = new List<CampaignSpendRecorded>();
        var ignored = 0;
        foreach (var message in ordered)
        {
            if (message is CampaignSpendRecorded s)
            {
                spend.Add(s);
                continue;
            }
            if (message is not LeadEvent e) continue;
            var decision = Lifecycle.Decide(leads.GetValueOrDefault(e.LeadId), e, definition);
            leads[e.LeadId] = decision.Lead;
            if (decision.Ignored is not null) ignored++;
            if (decision.Transitions.Count > 0) Transitions(transitions, e.LeadId).AddRange(decision.Transitions);
        }

        var outcomes = new List<LeadOutcome>(leads.Count);
        foreach (var id in leads.Keys.Order(StringComparer.Ordinal))
        {
            var decision = Lifecycle.Rescore(leads[id], at, definition, Lifecycle.DerivedId(Guid.Empty, $"replay-rescore:{id}"));
            leads[id] = decision.Lead;
            if (decision.Transitions.Count > 0) Transitions(transitions, id).AddRange(decision.Transitions);
            outcomes.Add(new LeadOutcome(id, decision.Lead.Stage, decision.Lead.Profile.Source, decision.Score.Total, decision.Score.Lines,
                transitions.GetValueOrDefault(id) ?? []));
        }

        return new ReplayResult(outcomes, Summarise(leads.Values, transitions, spend, at, definition, ordered.Count, duplicates, ignored));
    }

    private static List<StageTransition> Transitions(Dictionary<string, List<StageTransition>> all, string id) =>
        all.TryGetValue(id, out var list) ? list : all[id] = [];

    private static ReplaySummary Summarise(IEnumerable<Lead> leads, Dictionary<string, List<StageTransition>> transitions, List<CampaignSpendRecorded> spend, DateTimeOffset now, Definition definition, int events, int duplicates, int ignored)
    {
        var all = leads.ToList();
        var perStage = Enum.GetValues<LeadStage>().ToDictionary(s => s, s => all.Count(l => l.Stage == s));
        var cohort = all.Where(l => l.FirstMqlAt is { } at && MqlValue.InCohort(at, now, definition.Value)).ToList();

        CohortCounts Count(string? source, IEnumerable<Lead> group)
        {
            var list = group.ToList();
            var customers = list.Where(l => l.DealsWon > 0).ToList();
            return new CohortCounts(source, list.Count, customers.Count, customers.Sum(l => l.Revenue), customers.Sum(l => (double)l.Revenue * (double)l.Revenue));
        }

        var (overall, bySource) = MqlValue.EstimateAll(
            all.GroupBy(l => l.Profile.Source).Select(g => Count(g.Key, cohort.Where(l => l.Profile.Source == g.Key))), definition.Value);
        var spendByChannel = spend.GroupBy(s => s.Channel.ToLowerInvariant()).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(
            g => g.Key,
            g =>
            {
                var fromChannel = all.Where(l => l.Profile.Source == g.Key).ToList();
                return MqlValue.Spend(g.Sum(s => s.Amount), fromChannel.Count(l => l.FirstMqlAt is not null),
                    fromChannel.Count(l => l.DealsWon > 0), fromChannel.Sum(l => l.Revenue));
            });
        return new ReplaySummary(events, duplicates, ignored, perStage, Funnel.From(all.Select(l => (l, (IReadOnlyList<StageTransition>)(transitions.GetValueOrDefault(l.Id) ?? []))).ToList()), overall, bySource, spendByChannel);
    }
}
