using Nurture.Contracts;

namespace Nurture.Core.Tests;

public class When_a_lead_is_nurtured
{
    private readonly Given _given = new();

    [Theory]
    [InlineData("landscaping", "garden")]
    [InlineData("software", "software")]
    [InlineData("SOLAR", "solar")]
    [InlineData("bakery", "default")]
    public void Should_pick_the_track_for_the_leads_segment(string industry, string track)
    {
        var lead = _given.Apply(null, _given.Captured(industry)).Lead;

        Assert.Equal(track, NurturePlan.TrackFor(lead.Profile, _given.Definition).Name);
    }

    [Theory]
    // Monday 2026-03-02 07:00 UTC is 08:00 in Berlin: before the window opens at 09:00 local.
    [InlineData("2026-03-02T07:00:00Z", "Europe/Berlin", "2026-03-02T09:00:00+01:00")]
    [InlineData("2026-03-02T10:00:00Z", "Europe/Berlin", "2026-03-02T11:00:00+01:00")]
    // Friday 17:30 Berlin is after the window: next Monday 09:00.
    [InlineData("2026-03-06T16:30:00Z", "Europe/Berlin", "2026-03-09T09:00:00+01:00")]
    // Saturday in New York: Monday 09:00 New York time.
    [InlineData("2026-03-07T15:00:00Z", "America/New_York", "2026-03-09T09:00:00-04:00")]
    // No time zone: the definition's default.
    [InlineData("2026-03-02T05:00:00Z", null, "2026-03-02T09:00:00+01:00")]
    public void Should_move_a_step_into_the_send_window_in_the_leads_time_zone(string at, string? zone, string expected)
    {
        var due = NurturePlan.IntoWindow(DateTimeOffset.Parse(at), zone, _given.Definition.Nurture.SendWindow);

        Assert.Equal(DateTimeOffset.Parse(expected), due);
    }

    [Fact]
    public void Should_schedule_each_step_its_delay_after_the_previous_one()
    {
        var lead = _given.Apply(null, _given.Captured("software")).Lead;

        var first = NurturePlan.First(lead, Given.Start, _given.Definition)!;
        var second = NurturePlan.Next(lead, first.Track, first.Step, first.DueAt, _given.Definition)!;

        Assert.Equal(("software", 0, "software-welcome"), (first.Track, first.Step, first.Template));
        Assert.Equal(("software", 1, "software-tutorials"), (second.Track, second.Step, second.Template));
        Assert.Equal(first.DueAt.AddDays(2), second.DueAt);
        Assert.Null(NurturePlan.Next(lead, "software", 3, second.DueAt, _given.Definition));
    }

    [Fact]
    public void Should_hold_the_frequency_cap_and_say_when_a_slot_frees()
    {
        var lead = _given.Apply(null, _given.Captured()).Lead;
        var now = new DateTimeOffset(2026, 3, 4, 10, 0, 0, TimeSpan.Zero); // Wednesday, inside the window
        DateTimeOffset[] sent = [now.AddDays(-2), now.AddDays(-1)];

        var check = NurturePlan.Check(lead, "software", 1, now, sent, _given.Definition);

        Assert.Equal(StepVerdict.Defer, check.Verdict);
        Assert.StartsWith("frequency cap", check.Reason, StringComparison.Ordinal);
        Assert.True(check.RetryAt > now.AddDays(4));
        Assert.Equal(StepVerdict.Send, NurturePlan.Check(lead, "software", 1, check.RetryAt!.Value, sent, _given.Definition).Verdict);
    }

    [Fact]
    public void Should_defer_outside_the_window_and_exit_when_the_lead_leaves_nurture()
    {
        var lead = _given.Apply(null, _given.Captured()).Lead;
        var saturday = new DateTimeOffset(2026, 3, 7, 12, 0, 0, TimeSpan.Zero);

        Assert.Equal(StepVerdict.Defer, NurturePlan.Check(lead, "software", 0, saturday, [], _given.Definition).Verdict);
        var unsubscribed = _given.Apply(lead, _given.Unsubscribed()).Lead;
        Assert.Equal(StepVerdict.Exit, NurturePlan.Check(unsubscribed, "software", 0, saturday, [], _given.Definition).Verdict);
        var sql = lead with { Stage = LeadStage.Sql };
        Assert.Equal("lead reached Sql", NurturePlan.Check(sql, "software", 0, saturday, [], _given.Definition).Reason);
        var noConsent = _given.Apply(null, _given.Captured(consent: false)).Lead;
        Assert.Equal(StepVerdict.Exit, NurturePlan.Check(noConsent, "software", 0, saturday, [], _given.Definition).Verdict);
    }

    [Fact]
    public void Should_skip_a_step_whose_condition_does_not_hold()
    {
        var attended = _given.Apply(null, _given.Captured(), _given.Did(ActivityType.WebinarAttended)).Lead;
        var wednesday = new DateTimeOffset(2026, 3, 4, 10, 0, 0, TimeSpan.Zero);

        var check = NurturePlan.Check(attended, "software", 2, wednesday, [], _given.Definition);

        Assert.Equal(StepVerdict.Skip, check.Verdict);
        Assert.Equal("condition: webinarAttended already done", check.Reason);
    }
}
