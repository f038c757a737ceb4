using Nurture.Contracts;

namespace Nurture.Core.Tests;

/// <summary>README: the funnel "records the jump … never invents" the stages a lead skipped.</summary>
public class When_a_lead_jumps_stages
{
    [Fact]
    public void Should_count_the_stages_it_jumped_as_skipped_not_reached()
    {
        var given = new Given("garden-1");
        var events = new List<NurtureMessage> { given.Captured(industry: "landscaping") };
        given.After(TimeSpan.FromDays(3));
        events.Add(given.Won(8450m)); // a quote signed by phone: never an MQL, never with sales

        var funnel = Replay.Run(events, DefaultDefinition.Create()).Summary.Funnel.ToDictionary(f => f.Stage);

        Assert.Equal((1, 0), (funnel[LeadStage.Lead].Reached, funnel[LeadStage.Lead].Skipped));
        Assert.Equal((0, 1), (funnel[LeadStage.Mql].Reached, funnel[LeadStage.Mql].Skipped));
        Assert.Equal((0, 1), (funnel[LeadStage.Sal].Reached, funnel[LeadStage.Sal].Skipped));
        Assert.Equal((0, 1), (funnel[LeadStage.Sql].Reached, funnel[LeadStage.Sql].Skipped));
        Assert.Equal((1, 0), (funnel[LeadStage.Customer].Reached, funnel[LeadStage.Customer].Skipped));
        Assert.Null(funnel[LeadStage.Sal].ConversionFromPrevious);
    }

    [Fact]
    public void Should_count_a_stage_entered_once_even_after_a_recycle_and_a_second_pass()
    {
        var leadEvents = new List<NurtureMessage>();
        var g = new Given();
        leadEvents.Add(g.Captured());
        g.After(TimeSpan.FromHours(1));
        leadEvents.Add(g.Did(ActivityType.TrialStarted));
        g.After(TimeSpan.FromHours(1));
        leadEvents.Add(g.Did(ActivityType.DemoRequested));
        g.After(TimeSpan.FromHours(1));
        leadEvents.Add(g.Rejected());
        g.After(TimeSpan.FromDays(1));
        leadEvents.Add(g.Qualified()); // recycled → SQL: it was an MQL before, but never a SAL

        var funnel = Replay.Run(leadEvents, DefaultDefinition.Create(), g.Now).Summary.Funnel.ToDictionary(f => f.Stage);

        Assert.Equal(1, funnel[LeadStage.Mql].Reached);
        Assert.Equal((0, 1), (funnel[LeadStage.Sal].Reached, funnel[LeadStage.Sal].Skipped));
        Assert.Equal(1, funnel[LeadStage.Sql].Reached);
    }
}
