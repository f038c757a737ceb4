using Nurture.Contracts;

namespace Nurture.Core.Tests;

public class When_a_lead_shows_interest
{
    private readonly Given _given = new();

    [Fact]
    public void Should_become_an_mql_with_a_trial_and_a_demo_request()
    {
        var decision = _given.AnMql();

        Assert.Equal(LeadStage.Mql, decision.Lead.Stage);
        var transition = Assert.Single(decision.Transitions);
        Assert.Equal((LeadStage.Lead, LeadStage.Mql), (transition.From, transition.To));
        Assert.Equal(_given.Definition.Version, transition.DefinitionVersion);
        var handed = Assert.Single(decision.Outgoing.OfType<LeadHandedToSales>());
        Assert.Equal(decision.Score.Total, handed.Score);
        Assert.Contains(decision.Outgoing, m => m is LeadStageChanged { To: LeadStage.Mql });
    }

    [Fact]
    public void Should_not_hand_over_too_early_on_a_single_action()
    {
        // A demo request alone scores 40 + fit 55 = 95, over the threshold, but it is one engagement: the guard holds it back.
        var decision = _given.Apply(null, _given.Captured(), _given.Did(ActivityType.DemoRequested));

        Assert.True(decision.Score.Total >= _given.Definition.Qualification.MqlThreshold);
        Assert.Equal(LeadStage.Lead, decision.Lead.Stage);
        Assert.Contains("engagements", Lifecycle.Qualifies(decision.Lead, decision.Score, _given.Definition, _given.Now).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_not_qualify_on_downloads_alone_without_high_intent()
    {
        var decision = _given.Apply(null, _given.Captured(), _given.Did(ActivityType.WhitepaperDownloaded), _given.Did(ActivityType.WhitepaperDownloaded),
            _given.Did(ActivityType.TutorialViewed), _given.Did(ActivityType.TutorialViewed));

        Assert.Equal(LeadStage.Lead, decision.Lead.Stage);
        Assert.Equal("no high-intent action yet", Lifecycle.Qualifies(decision.Lead, decision.Score, _given.Definition, _given.Now).Reason);
    }

    [Fact]
    public void Should_not_qualify_a_lead_whose_fit_is_below_the_minimum()
    {
        var definition = DefaultDefinition.Create();
        definition.Qualification.MinimumFit = 40;
        var given = new Given { Definition = definition };
        var decision = given.Apply(null, given.Captured("bakery", 0, "FR", "x@gmail.com", null), given.Did(ActivityType.TrialStarted), given.Did(ActivityType.DemoRequested));

        Assert.Equal(LeadStage.Lead, decision.Lead.Stage);
        Assert.StartsWith("fit 0 below minimum 40", Lifecycle.Qualifies(decision.Lead, decision.Score, definition, given.Now).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_match_the_articles_solar_example_comparison_then_calculator()
    {
        var decision = _given.Apply(null, _given.Captured("solar", 12, "DE", "kai@solarhaus.example", "Owner"),
            _given.Did(ActivityType.ProductComparisonDownloaded), _given.Did(ActivityType.CalculatorRequested));

        Assert.Equal(LeadStage.Mql, decision.Lead.Stage);
    }

    [Fact]
    public void Should_demote_an_unaccepted_mql_whose_interest_cooled()
    {
        // A poor fit (fit 5) whose score rests on behaviour alone.
        var mql = _given.Apply(null, _given.Captured("solar", 2000, "US", "lea@gmx.de", "Student"),
            _given.Did(ActivityType.TrialStarted), _given.Did(ActivityType.DemoRequested)).Lead;
        Assert.Equal(LeadStage.Mql, mql.Stage);

        var soon = Lifecycle.Rescore(mql, _given.Now.AddDays(5), _given.Definition, Guid.NewGuid());
        var cooled = Lifecycle.Rescore(mql, _given.Now.AddDays(200), _given.Definition, Guid.NewGuid());

        Assert.Equal(LeadStage.Mql, soon.Lead.Stage);
        Assert.Equal(LeadStage.Lead, cooled.Lead.Stage);
        Assert.Contains("interest cooled", Assert.Single(cooled.Transitions).Reason, StringComparison.Ordinal);
    }
}
