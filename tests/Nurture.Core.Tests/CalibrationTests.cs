using Nurture.Contracts;

namespace Nurture.Core.Tests;

/// <summary>`calibrate`'s model: the definition's rules as features, a penalised logistic fit, and a proposal of the same shape.</summary>
public class When_the_definition_is_calibrated_on_won_and_lost_deals
{
    private static readonly string[] RoleChoices = ["Head of IT", "Werkstudentin", "Vertriebsleiter", "CEO", "Marketing Manager", "Student", "Assistant"];
    private static readonly string[] EmailChoices = ["anna@gmail.com", "anna@competitor.example", "anna@softwarehaus.example"];
    private static readonly ActivityType[] Activities = Enum.GetValues<ActivityType>();
    private static readonly string[] Industries = ["software", "solar", "landscaping", "bakery"];
    private static readonly string[] Countries = ["DE", "AT", "US"];

    [Fact]
    public void Should_give_every_lead_the_score_the_definition_gives_it_before_decay()
    {
        var definition = DefaultDefinition.Create();
        var features = ScoreFeatures.Of(definition);
        var points = features.Select(f => f.Points).ToArray();
        var random = new Random(5);

        for (var i = 0; i < 300; i++)
        {
            var given = new Given($"lead-{i}");
            var events = new List<LeadEvent>
            {
                given.Captured(industry: Industries[random.Next(Industries.Length)], size: random.Next(1, 3000),
                    country: Countries[random.Next(Countries.Length)], email: EmailChoices[random.Next(EmailChoices.Length)], role: random.Next(8) == 0 ? null : RoleChoices[random.Next(RoleChoices.Length)]),
            };
            for (var n = random.Next(12); n > 0; n--) events.Add(given.After(TimeSpan.FromHours(random.Next(1, 90))).Did(Activities[random.Next(Activities.Length)]));
            if (random.Next(6) == 0) events.Add(new LeadUnsubscribed { EventId = given.NextId(), LeadId = given.LeadId, OccurredAt = given.Now });
            if (random.Next(8) == 0) events.Add(new EmailBounced { EventId = given.NextId(), LeadId = given.LeadId, OccurredAt = given.Now, Kind = BounceKind.Hard });
            Lead? lead = null;
            foreach (var e in events) lead = Lifecycle.Decide(lead, e, definition).Lead;

            var values = ScoreFeatures.Values(lead!, definition, features);

            var expected = Scoring.Score(lead!, lead!.LastActivityAt ?? lead.FirstSeenAt, definition).Total;
            Assert.Equal(expected, Math.Round(values.Zip(points, (v, p) => v * p).Sum(), 2));
        }
    }

    [Fact]
    public void Should_recover_planted_weights_and_keep_a_weight_without_data_at_its_prior()
    {
        var random = new Random(11);
        var x = new List<double[]>();
        var y = new List<bool>();
        for (var i = 0; i < 4000; i++)
        {
            double[] row = [random.Next(2), random.Next(2), random.Next(2), 0];
            x.Add(row);
            y.Add(random.NextDouble() < Logistic.Sigmoid(-1 + 2 * row[0] + 1 * row[1] + 0 * row[2]));
        }

        var w = Logistic.Fit(x, y, [0, 0, 0, 0.7], lambda: 0.01);

        Assert.InRange(w[0], -1.3, -0.7);
        Assert.InRange(w[1], 1.7, 2.3);
        Assert.InRange(w[2], 0.7, 1.3);
        Assert.InRange(w[3], -0.3, 0.3);
        Assert.Equal(0.7, w[4], 6); // nobody has the fourth feature: the prior decides
        var left = Logistic.Fit(x, y, [0, 0, 0, 0.7], lambda: 0.01, zero: [false, true, false, false]);
        Assert.Equal(0, left[2]);
    }

    [Theory]
    [InlineData(new double[] { 1, 2, 3, 4 }, new[] { false, false, true, true }, 1.0)]
    [InlineData(new double[] { 1, 2, 3, 4 }, new[] { true, true, false, false }, 0.0)]
    [InlineData(new double[] { 5, 5, 5, 5 }, new[] { true, false, true, false }, 0.5)]
    [InlineData(new double[] { 1, 2, 3, 4 }, new[] { false, true, false, true }, 0.75)]
    public void Should_measure_ranking_as_the_chance_a_won_deal_outscores_a_lost_one(double[] scores, bool[] won, double auc)
    {
        Assert.Equal(auc, Logistic.Auc(scores, won)!.Value, 6);
        Assert.Null(Logistic.Auc(scores, won.Select(_ => true).ToArray()));
    }

    /// <summary>Leads with independent activities whose deals are won by a planted rule: a demo request matters most, a trial not at all.</summary>
    private static List<NurtureMessage> Deals(int leads, int seed)
    {
        var random = new Random(seed);
        var events = new List<NurtureMessage>();
        for (var i = 0; i < leads; i++)
        {
            var given = new Given($"lead-{i:D4}");
            given.After(TimeSpan.FromHours(6 * i));
            var student = random.Next(5) == 0;
            events.Add(given.Captured(role: student ? "Student" : "Head of IT", email: "anna@softwarehaus.example"));
            var did = new Dictionary<ActivityType, bool>
            {
                [ActivityType.DemoRequested] = random.Next(3) == 0,
                [ActivityType.WebinarAttended] = random.Next(2) == 0,
                [ActivityType.TrialStarted] = random.Next(2) == 0,
                [ActivityType.PricingPageViewed] = random.Next(2) == 0,
            };
            foreach (var activity in did.Where(d => d.Value).Select(d => d.Key)) events.Add(given.After(TimeSpan.FromHours(1)).Did(activity));
            events.Add(given.After(TimeSpan.FromDays(1)).Accepted());
            events.Add(given.After(TimeSpan.FromDays(2)).Qualified());
            var z = -1.2 + (did[ActivityType.DemoRequested] ? 2.5 : 0) + (did[ActivityType.WebinarAttended] ? 1.2 : 0) + (student ? -1.5 : 0);
            events.Add(random.NextDouble() < Logistic.Sigmoid(z) ? given.After(TimeSpan.FromDays(5)).Won() : given.After(TimeSpan.FromDays(5)).Lost());
        }
        // A last event well after the deals, so every deal is older than the sales cycle.
        events.Add(new Given("late").After(TimeSpan.FromHours(6 * leads + 24 * 60)).Captured());
        return events;
    }

    [Fact]
    public void Should_propose_points_in_the_planted_order_that_rank_held_out_deals_better()
    {
        var current = DefaultDefinition.Create();

        var result = Calibration.Run(Deals(900, seed: 3), current, new CalibrationOptions { TargetMqlRate = 0.3 });

        double Points(string setting) => result.Points.Single(p => p.Setting == setting).Proposed;
        Assert.False(result.TooThin);
        Assert.True(Points("Scoring:Activities:demoRequested") > Points("Scoring:Activities:webinarAttended"));
        Assert.True(Points("Scoring:Activities:webinarAttended") > Points("Scoring:Activities:trialStarted")); // 20 < 30 in the built-in definition
        Assert.True(Points("Scoring:Fit:Roles:*:student") < 0);
        Assert.Equal(10, Points("Scoring:Fit:Roles:*:geschäftsführer")); // no German roles in the data: kept as it is
        Assert.InRange(Points("Scoring:Activities:trialStarted"), 1, 9); // the data gives it (almost) nothing of its 30
        Assert.True(result.Proposed.Auc > result.Current.Auc, $"proposed AUC {result.Proposed.Auc} vs current {result.Current.Auc}");
        Assert.Empty(result.Proposal.Validate());
        Assert.NotEqual(current.Version, result.Proposal.Version);
        Assert.Equal(result.Threshold.Proposed, result.Proposal.Qualification.MqlThreshold);
        Assert.Equal(current.Scoring.Activities["demoRequested"].Cap / current.Scoring.Activities["demoRequested"].Points,
            result.Proposal.Scoring.Activities["demoRequested"].Cap / result.Proposal.Scoring.Activities["demoRequested"].Points, 1); // the cap kept as a count
        Assert.Equal(result.Data.Training + result.Data.HeldOut, result.Data.Deals);
        Assert.Equal(270, result.Data.HeldOut); // the latest 30 % by capture time
    }

    [Fact]
    public void Should_call_a_few_dozen_deals_too_thin_to_trust_and_still_propose_a_valid_definition()
    {
        var current = DefaultDefinition.Create();

        var result = Calibration.Run(Deals(60, seed: 4), current, new CalibrationOptions());

        Assert.True(result.TooThin);
        Assert.True(result.Data.TrainingCustomers < 30);
        Assert.Contains(result.Notes, n => n.StartsWith("Too thin to trust", StringComparison.Ordinal));
        Assert.Empty(result.Proposal.Validate());
    }

    [Fact]
    public void Should_refuse_data_without_decided_deals_naming_what_is_missing()
    {
        var given = new Given();
        List<NurtureMessage> events = [given.Captured(), given.After(TimeSpan.FromDays(1)).Did(ActivityType.DemoRequested)];

        var error = Assert.Throws<ArgumentException>(() => Calibration.Run(events, DefaultDefinition.Create(), new CalibrationOptions()));

        Assert.Contains("won or lost deal", error.Message, StringComparison.Ordinal);
    }
}
