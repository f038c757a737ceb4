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
