using Nurture.Contracts;

namespace Nurture.Core.Tests;

/// <summary>Clicks on nurture email links: a person's counts, a link scanner's is kept in the history and counts for nothing.</summary>
public class When_a_link_in_a_nurture_email_is_clicked
{
    private static readonly DateTimeOffset Sent = Given.Start;

    private static LeadActivityRecorded Click(Given given, bool machine) => given.Did(ActivityType.EmailClicked) with
    {
        Properties = machine ? new Dictionary<string, string> { [Clicks.Machine] = "true", ["machineReason"] = "HEAD request" } : new Dictionary<string, string> { ["link"] = "0" },
    };

    [Theory]
    [InlineData("emailClicked", "software", "2", "software", 2)]
    [InlineData("emailClicked", "software", "0", "software", 0)]
    [InlineData("emailClicked", "software", "02", null, 0)] // the step's text must be the step's own
    [InlineData("emailClicked", "software", "-1", null, 0)]
    [InlineData("emailClicked", "software", " 1", null, 0)]
    [InlineData("emailClicked", "software", "one", null, 0)]
    [InlineData("emailClicked", null, "1", null, 0)]
    [InlineData("emailClicked", "software", null, null, 0)]
    [InlineData("emailOpened", "software", "1", null, 0)] // an open names the email too, but is no click
    public void Should_name_the_email_step_a_click_was_on_only_when_its_properties_say_it_plainly(string activity, string? track, string? step, string? expectedTrack, int expectedStep)
    {
        var properties = new Dictionary<string, string>();
        if (track is not null) properties["track"] = track;
        if (step is not null) properties["step"] = step;
        var click = new Given().Did(Enum.Parse<ActivityType>(activity, ignoreCase: true)) with { Properties = properties };

        var named = Clicks.EmailStep(click);

        Assert.Equal(expectedTrack is null ? null : (expectedTrack, expectedStep), named);
    }

    [Theory]
    [InlineData("software", "2", true)]
    [InlineData("software", "99", false)] // the track has no such step
    [InlineData("anna@softwarehaus.example", "0", false)] // no track: whatever a publisher wrote there is not kept
    public void Should_keep_a_click_beside_its_event_only_on_a_step_of_a_track_the_definition_names(string track, string step, bool kept)
    {
        var definition = DefaultDefinition.Create();
        var click = new Given().Did(ActivityType.EmailClicked) with { Properties = new Dictionary<string, string> { ["track"] = track, ["step"] = step } };

        Assert.NotNull(Clicks.EmailStep(click)); // plainly named either way
        Assert.Equal(kept ? (track, int.Parse(step, System.Globalization.CultureInfo.InvariantCulture)) : null, Clicks.EmailStep(click, definition));
    }

    [Fact]
    public void Should_score_a_persons_click_and_ignore_a_machines()
    {
        var given = new Given();
        var captured = given.Apply(null, given.Captured());
        given.After(TimeSpan.FromHours(1));

        var byMachine = given.Apply(captured.Lead, Click(given, machine: true));
        var byPerson = given.Apply(byMachine.Lead, Click(given, machine: false));

        Assert.Equal(captured.Score.Total, byMachine.Score.Total);
        Assert.False(byMachine.Lead.Activities.ContainsKey(ActivityType.EmailClicked));
        Assert.Equal(0, byMachine.Lead.EngagementsSinceRecycle);
        Assert.Equal(captured.Score.Total + 3, byPerson.Score.Total);
        Assert.Equal(1, byPerson.Lead.Activities[ActivityType.EmailClicked]);
    }

    [Fact]
    public void Should_never_qualify_a_lead_on_machine_clicks_however_many()
    {
        var given = new Given();
        var lead = given.Apply(null, given.Captured(), given.Did(ActivityType.DemoRequested)).Lead;

        for (var i = 0; i < 20; i++) lead = given.Apply(lead, Click(given, machine: true)).Lead;

        Assert.Equal(LeadStage.Lead, lead.Stage); // the demo request alone is one engagement; the guard asks for two
    }

    public static TheoryData<bool, double, (int, double)[], int, string?> Cases => new()
    {
        { true, 600, [], 0, "HEAD request" },
        { false, 3, [], 0, "clicked within 15 s of delivery" },
        { false, 600, [(1, 600.5)], 0, "another link of the email clicked within 2 s" },
        { false, 600, [(0, 600.5)], 0, null }, // the same link again is not a burst
        { false, 600, [(1, 300)], 0, null }, // another link, minutes apart: a person reading on
        { false, 15, [], 0, null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Should_tell_a_machine_click_by_method_timing_and_burst(bool head, double secondsAfterSending, (int, double)[] others, int link, string? expected)
    {
        var reason = Clicks.MachineReason(head, Sent, Sent.AddSeconds(secondsAfterSending), others.Select(o => (o.Item1, Sent.AddSeconds(o.Item2))), link,
            TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(2));

        Assert.Equal(expected, reason);
    }
}
