using Nurture.Contracts;

namespace Nurture.Core.Tests;

public class When_sales_and_deals_move_a_lead
{
    private readonly Given _given = new();

    private Lead At(LeadStage stage)
    {
        var mql = _given.AnMql().Lead;
        return stage switch
        {
            LeadStage.Lead => _given.Apply(null, _given.Captured()).Lead,
            LeadStage.Mql => mql,
            LeadStage.Sal => _given.Apply(mql, _given.Accepted()).Lead,
            LeadStage.Sql => _given.Apply(mql, _given.Accepted(), _given.Qualified()).Lead,
            LeadStage.Customer => _given.Apply(mql, _given.Accepted(), _given.Qualified(), _given.Won()).Lead,
            LeadStage.Disqualified => _given.Apply(mql, _given.Disqualified()).Lead,
            LeadStage.Recycled => _given.Apply(mql, _given.Rejected()).Lead,
            _ => throw new ArgumentOutOfRangeException(nameof(stage)),
        };
    }

    private LeadEvent EventOf(string name) => name switch
    {
        "accepted" => _given.Accepted(),
        "rejected" => _given.Rejected(),
        "qualified" => _given.Qualified(),
        "won" => _given.Won(),
        "lost" => _given.Lost(),
        "disqualified" => _given.Disqualified(),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [InlineData(LeadStage.Mql, "accepted", LeadStage.Sal, "")]
    [InlineData(LeadStage.Mql, "rejected", LeadStage.Recycled, "")]
    [InlineData(LeadStage.Sal, "rejected", LeadStage.Recycled, "")]
    [InlineData(LeadStage.Sal, "qualified", LeadStage.Sql, "")]
    [InlineData(LeadStage.Sql, "won", LeadStage.Customer, "")]
    [InlineData(LeadStage.Sql, "lost", LeadStage.Recycled, "")]
    [InlineData(LeadStage.Sal, "lost", LeadStage.Recycled, "")]
    [InlineData(LeadStage.Mql, "disqualified", LeadStage.Disqualified, "")]
    [InlineData(LeadStage.Lead, "won", LeadStage.Customer, "Mql,Sal,Sql")]
    [InlineData(LeadStage.Lead, "accepted", LeadStage.Sal, "Mql")]
    [InlineData(LeadStage.Mql, "qualified", LeadStage.Sql, "Sal")]
    [InlineData(LeadStage.Recycled, "accepted", LeadStage.Sal, "Mql")]
    [InlineData(LeadStage.Disqualified, "won", LeadStage.Customer, "")]
    public void Should_move_the_lead_and_record_skipped_stages_without_inventing_them(LeadStage from, string happened, LeadStage to, string skipped)
    {
        var lead = At(from);
        _given.After(TimeSpan.FromDays(1));

        var decision = _given.Apply(lead, EventOf(happened));

        Assert.Equal(to, decision.Lead.Stage);
        var transition = Assert.Single(decision.Transitions);
        Assert.Equal((from, to), (transition.From, transition.To));
        Assert.Equal(skipped, string.Join(",", transition.Skipped));
        Assert.Equal(_given.Definition.Version, transition.DefinitionVersion);
        Assert.Equal(_given.Now, decision.Lead.StageEnteredAt);
        var changed = Assert.Single(decision.Outgoing.OfType<LeadStageChanged>());
        Assert.Equal(transition.Skipped, changed.Skipped);
    }

    [Theory]
    [InlineData(LeadStage.Lead, "rejected", "cannot move to Recycled")]
    [InlineData(LeadStage.Lead, "lost", "cannot move to Recycled")]
    [InlineData(LeadStage.Sal, "accepted", "already Sal")]
    [InlineData(LeadStage.Customer, "qualified", "cannot move to Sql")]
    [InlineData(LeadStage.Customer, "disqualified", "cannot move to Disqualified")]
    [InlineData(LeadStage.Disqualified, "accepted", "cannot move to Sal")]
    [InlineData(LeadStage.Disqualified, "disqualified", "already Disqualified")]
    public void Should_answer_an_event_that_does_not_fit_with_a_reason_not_an_exception(LeadStage from, string happened, string reason)
    {
        var lead = At(from);

        var decision = _given.Apply(lead, EventOf(happened));

        Assert.Equal(from, decision.Lead.Stage);
        Assert.Empty(decision.Transitions);
        Assert.Contains(reason, decision.Ignored, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_keep_the_reason_when_sales_sends_a_lead_back_and_re_enrol_it()
    {
        var decision = _given.Apply(At(LeadStage.Sal), _given.Rejected("wants to wait until spring"));

        Assert.Equal(LeadStage.Recycled, decision.Lead.Stage);
        Assert.Equal("wants to wait until spring", decision.Lead.RecycleReason);
        Assert.Equal(NurtureChange.Enrol, decision.Nurture);
        Assert.Equal(0, decision.Lead.EngagementsSinceRecycle);
    }

    [Fact]
    public void Should_requalify_a_recycled_lead_only_after_fresh_engagement()
    {
        var recycled = At(LeadStage.Recycled);

        var one = _given.Apply(recycled, _given.Did(ActivityType.PricingPageViewed));
        var two = _given.Apply(one.Lead, _given.Did(ActivityType.WebinarAttended));

        Assert.Equal(LeadStage.Recycled, one.Lead.Stage);
        Assert.Equal(LeadStage.Mql, two.Lead.Stage);
        Assert.Equal(LeadStage.Recycled, Assert.Single(two.Transitions).From);
    }

    [Fact]
    public void Should_exit_nurture_at_a_goal_stage_on_unsubscribe_and_on_a_hard_bounce()
    {
        Assert.Equal(NurtureChange.Exit, _given.Apply(At(LeadStage.Sal), _given.Qualified()).Nurture);
        Assert.Equal(NurtureChange.Exit, _given.Apply(At(LeadStage.Lead), _given.Unsubscribed()).Nurture);
        Assert.Equal(NurtureChange.Exit, _given.Apply(At(LeadStage.Lead), _given.Bounced()).Nurture);
        Assert.Equal(NurtureChange.Enrol, _given.Apply(null, _given.Captured()).Nurture);
    }

    [Fact]
    public void Should_blank_personal_fields_on_erase_and_keep_the_stage()
    {
        var decision = _given.Apply(At(LeadStage.Sql), _given.Erased());

        Assert.Equal(LeadStage.Sql, decision.Lead.Stage);
        Assert.Null(decision.Lead.Profile.Email);
        Assert.Null(decision.Lead.Profile.FirstName);
        Assert.Equal("software", decision.Lead.Profile.Industry);
        Assert.Equal(NurtureChange.Exit, decision.Nurture);
    }

    [Fact]
    public void Should_add_the_revenue_of_a_second_deal_to_a_customer()
    {
        var decision = _given.Apply(At(LeadStage.Customer), _given.Won(250m));

        Assert.Equal(750m, decision.Lead.Revenue);
        Assert.Equal(2, decision.Lead.DealsWon);
        Assert.Empty(decision.Transitions);
    }

    [Fact]
    public void Should_derive_the_same_outgoing_ids_when_an_event_is_decided_twice()
    {
        var lead = At(LeadStage.Mql);
        var accepted = _given.Accepted();

        var first = Lifecycle.Decide(lead, accepted, _given.Definition);
        var again = Lifecycle.Decide(lead, accepted, _given.Definition);

        Assert.Equal(first.Outgoing.Select(m => m.EventId), again.Outgoing.Select(m => m.EventId));
        Assert.DoesNotContain(first.Outgoing, m => m.EventId == accepted.EventId);
    }
}
