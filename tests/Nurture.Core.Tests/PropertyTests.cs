using FsCheck.Xunit;
using Nurture.Contracts;

namespace Nurture.Core.Tests;

/// <summary>Properties over random lead histories; FsCheck supplies (and shrinks) the seeds.</summary>
public class When_histories_arrive_in_any_order
{
    private static readonly ActivityType[] AllActivities = Enum.GetValues<ActivityType>();

    private static List<NurtureMessage> RandomHistory(int seed, int leads = 3)
    {
        var random = new Random(seed);
        var events = new List<NurtureMessage>();
        for (var l = 0; l < leads; l++)
        {
            var given = new Given($"lead-{seed}-{l}");
            events.Add(given.Captured(random.Next(2) == 0 ? "software" : "solar", random.Next(1, 500), consent: random.Next(4) > 0));
            for (var i = random.Next(12); i > 0; i--)
            {
                given.After(TimeSpan.FromHours(random.Next(1, 96)));
                events.Add(random.Next(10) switch
                {
                    0 => given.Accepted(),
                    1 => given.Rejected(),
                    2 => given.Qualified(),
                    3 => given.Won(random.Next(100, 5000)),
                    4 when random.Next(3) == 0 => given.Unsubscribed(),
                    _ => given.Did(AllActivities[random.Next(AllActivities.Length)]),
                });
            }
        }
        return events;
    }

    private static List<T> Shuffled<T>(IEnumerable<T> items, int seed)
    {
        var random = new Random(seed);
        return items.Select(x => (x, Key: random.Next())).OrderBy(p => p.Key).Select(p => p.x).ToList();
    }

    [Property(MaxTest = 200)]
    public bool Score_depends_on_the_history_not_on_the_order_activities_arrive_in(int seed, int shuffle)
    {
        var given = new Given();
        var random = new Random(seed);
        var activities = Enumerable.Range(0, random.Next(1, 15)).Select(_ =>
        {
            given.After(TimeSpan.FromHours(random.Next(1, 72)));
            return (LeadEvent)given.Did(AllActivities[random.Next(AllActivities.Length)]);
        }).Prepend(given.Captured()).ToList();
        var now = given.Now.AddDays(random.Next(0, 90));

        Lead? Fold(IEnumerable<LeadEvent> events) => events.Aggregate((Lead?)null, (lead, e) => Lifecycle.Decide(lead, e, given.Definition).Lead);
        var inOrder = Scoring.Score(Fold(activities)!, now, given.Definition);
        var shuffled = Scoring.Score(Fold(Shuffled(activities, shuffle))!, now, given.Definition);

        return inOrder.Total == shuffled.Total && inOrder.Lines.SequenceEqual(shuffled.Lines);
    }

    [Property(MaxTest = 100)]
    public bool Replay_gives_the_same_result_whatever_order_and_redeliveries(int seed, int shuffle)
    {
        var events = RandomHistory(seed);
        var definition = DefaultDefinition.Create();
        var redelivered = events.Concat(events.Where((_, i) => i % 3 == 0));

        var a = Replay.Run(events, definition);
        var b = Replay.Run(Shuffled(redelivered, shuffle), definition);

        return a.Leads.Select(Describe).SequenceEqual(b.Leads.Select(Describe))
            && a.Summary.MqlValue == b.Summary.MqlValue
            && b.Summary.Duplicates == (events.Count + 2) / 3
            && b.Summary.Events == events.Count;
    }

    [Property(MaxTest = 100)]
    public bool Applying_out_of_order_like_the_worker_ends_where_replay_ends(int seed, int shuffle)
    {
        // The worker decides an in-order event on its own and a late one by deciding the lead's stored history again.
        var events = RandomHistory(seed).OfType<LeadEvent>().ToList();
        var definition = DefaultDefinition.Create();
        var leads = new Dictionary<string, Lead>();
        var history = new Dictionary<string, List<LeadEvent>>();
        foreach (var e in Shuffled(events, shuffle))
        {
            var stored = history.TryGetValue(e.LeadId, out var h) ? h : history[e.LeadId] = [];
            stored.Add(e);
            var before = leads.GetValueOrDefault(e.LeadId);
            if (before is not null && Lifecycle.IsLate(before, e))
            {
                leads[e.LeadId] = Lifecycle.Redecide(before, stored, e, definition).Decision.Lead;
            }
            else
            {
                leads[e.LeadId] = Lifecycle.Decide(before, e, definition).Lead;
            }
        }

        var inOrder = Replay.Run(events, definition).Leads.ToDictionary(o => o.LeadId);
        var now = events.Max(e => e.OccurredAt);
        return leads.Values.All(lead =>
        {
            var after = Lifecycle.Rescore(lead, now, definition, Guid.Empty).Lead;
            var expected = inOrder[lead.Id];
            return after.Stage == expected.Stage && Scoring.Score(after, now, definition).Total == expected.Score;
        });
    }

    [Fact]
    public void A_late_sales_rejection_recycles_the_lead_once_the_history_is_in_order()
    {
        var given = new Given();
        var captured = given.Captured();
        var trial = given.After(TimeSpan.FromHours(1)).Did(ActivityType.TrialStarted);
        var demo = given.After(TimeSpan.FromHours(1)).Did(ActivityType.DemoRequested);
        var rejected = given.After(TimeSpan.FromHours(1)).Rejected();
        Assert.Equal(LeadStage.Recycled, given.Apply(null, captured, trial, demo, rejected).Lead.Stage);

        // The rejection arrives before the demo request that made the lead an MQL: on its own it does not fit.
        var early = given.Apply(null, captured, trial, rejected);
        Assert.NotNull(early.Ignored);
        Assert.Equal(LeadStage.Lead, early.Lead.Stage);
        Assert.True(Lifecycle.IsLate(early.Lead, demo));
        var late = Lifecycle.Redecide(early.Lead, [captured, trial, rejected, demo], demo, given.Definition);

        Assert.Equal(LeadStage.Recycled, late.Decision.Lead.Stage);
        Assert.Equal([LeadStage.Mql, LeadStage.Recycled], late.Decision.Transitions.Select(t => t.To));
        Assert.Contains(late.Decision.Outgoing, m => m is LeadHandedToSales);
        Assert.Contains(late.Decision.Outgoing, m => m is LeadStageChanged { To: LeadStage.Recycled });
        Assert.Equal(NurtureChange.Enrol, late.Decision.Nurture);
        Assert.Equal(rejected.EventId, late.Transitions[^1].Cause);
        var scored = Assert.Single(late.Decision.Outgoing.OfType<LeadScored>()); // one corrected score, under a new id
        Assert.Equal(late.Decision.Score.Total, scored.Score);
        Assert.Equal(Lifecycle.DerivedId(demo.EventId, "rescored"), scored.EventId);
    }

    private static string Describe(LeadOutcome o) =>
        $"{o.LeadId}|{o.Stage}|{o.Score}|{string.Join(";", o.Explanation)}|{string.Join(";", o.Transitions.Select(t => $"{t.From}>{t.To}@{t.At:O}"))}";

    [Property(MaxTest = 200)]
    public bool Decay_never_adds_points_and_never_goes_below_zero(int seed, FsCheck.PositiveInt days)
    {
        var given = new Given();
        var random = new Random(seed);
        var lead = given.Apply(null, given.Did(AllActivities[random.Next(AllActivities.Length)]), given.Did(ActivityType.DemoRequested)).Lead;

        var fresh = Scoring.Score(lead, given.Now, given.Definition).Behaviour;
        var later = Scoring.Score(lead, given.Now.AddDays(days.Get), given.Definition).Behaviour;
        var evenLater = Scoring.Score(lead, given.Now.AddDays(days.Get + 1), given.Definition).Behaviour;
        var factor = Scoring.DecayFactor(given.Now, given.Now.AddDays(days.Get), 30);

        return Math.Abs(later) <= Math.Abs(fresh) + 0.01 && Math.Abs(evenLater) <= Math.Abs(later) + 0.01 && factor is > 0 and <= 1;
    }

    [Property(MaxTest = 100)]
    public bool No_decision_leaves_the_transition_table(int seed)
    {
        var definition = DefaultDefinition.Create();
        var leads = new Dictionary<string, Lead>();
        foreach (var e in RandomHistory(seed, leads: 5).OfType<LeadEvent>())
        {
            var decision = Lifecycle.Decide(leads.GetValueOrDefault(e.LeadId), e, definition);
            if (decision.Transitions.Any(t => !Lifecycle.AllowedTransitions.Contains((t.From, t.To)))) return false;
            leads[e.LeadId] = decision.Lead;
        }
        return true;
    }
}
