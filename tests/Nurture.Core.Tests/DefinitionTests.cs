using Nurture.Contracts;

namespace Nurture.Core.Tests;

public class When_marketing_and_sales_write_a_definition
{
    [Fact]
    public void Should_accept_the_built_in_definition()
    {
        Assert.Empty(DefaultDefinition.Create().Validate());
    }

    public static TheoryData<string, Action<Definition>> BrokenDefinitions => new()
    {
        { "Nurture:Definition:Qualification:MqlThreshold: (1000) is unreachable", d => d.Qualification.MqlThreshold = 1000 },
        { "Nurture:Definition:Qualification:MqlThreshold: (0) must be positive", d => d.Qualification.MqlThreshold = 0 },
        { "Nurture:Definition:Scoring:Activities:webinarWatched: is not a known activity type", d => d.Scoring.Activities["webinarWatched"] = new() { Points = 5, Cap = 5 } },
        { "Nurture:Definition:Qualification:HighIntentActivities:1: 'bookedCall' is not a known activity type", d => d.Qualification.HighIntentActivities[1] = "bookedCall" },
        { "Nurture:Definition:Qualification:HighIntentActivities:0: 'formSubmitted' gives no positive points", d => d.Scoring.Activities.Remove("formSubmitted") },
        { "Nurture:Definition:Scoring:HalfLifeDays: (-3) must be zero (no decay) or positive", d => d.Scoring.HalfLifeDays = -3 },
        { "Nurture:Definition:Nurture:Tracks:1:Steps: track 'software' has no steps", d => d.Nurture.Tracks[1].Steps.Clear() },
        { "Nurture:Definition:Nurture:Tracks: has no default track", d => d.Nurture.Tracks.RemoveAt(3) },
        { "Nurture:Definition:Nurture:Tracks:0:Steps:1:Template: '../etc' may hold only", d => d.Nurture.Tracks[0].Steps[1].Template = "../etc" },
        { "Nurture:Definition:Nurture:Tracks:2:Name: 'manufacturing-and-in…' is longer than 64 characters", d => d.Nurture.Tracks[2].Name = "manufacturing-and-industrial-automation-for-small-and-mid-sized-companies" },
        { "Nurture:Definition:Nurture:SendWindow:EndHour: (8) must be after StartHour (9)", d => d.Nurture.SendWindow.EndHour = 8 },
        { "Nurture:Definition:Nurture:SendWindow:DefaultTimeZone: 'Mars/Olympus' is not a known time zone", d => d.Nurture.SendWindow.DefaultTimeZone = "Mars/Olympus" },
        { "Nurture:Definition:Value:PriorCloseRate: (20) is a rate", d => d.Value.PriorCloseRate = 20 },
        { "Nurture:Definition:Qualification:MinimumFit: (500) is unreachable", d => d.Qualification.MinimumFit = 500 },
        { "Nurture:Definition:Scoring:Activities:demoRequested:Cap: (10) is below the points", d => d.Scoring.Activities["demoRequested"].Cap = 10 },
        { "Nurture:Definition:Nurture:Tracks:1:Steps:2:Links:0:Url: 'javascript:alert(1)' is not an absolute http(s) URL", d => d.Nurture.Tracks[1].Steps[2].Links[0].Url = "javascript:alert(1)" },
        { "Nurture:Definition:Nurture:Tracks:0:Steps:0:Links:0:Text: is empty", d => d.Nurture.Tracks[0].Steps[0].Links[0].Text = " " },
    };

    [Theory]
    [MemberData(nameof(BrokenDefinitions))]
    public void Should_reject_a_definition_that_cannot_work_naming_the_setting(string expected, Action<Definition> breakIt)
    {
        var definition = DefaultDefinition.Create();
        breakIt(definition);

        var problems = definition.Validate();

        Assert.Contains(problems, p => p.StartsWith(expected, StringComparison.Ordinal));
        var thrown = Assert.Throws<DefinitionException>(() => definition.EnsureValid());
        Assert.Contains(expected, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_carry_its_version_into_every_transition()
    {
        var definition = DefaultDefinition.Create();
        definition.Version = "2027-01.2";
        var given = new Given { Definition = definition };

        var decision = given.AnMql();

        Assert.All(decision.Transitions, t => Assert.Equal("2027-01.2", t.DefinitionVersion));
        Assert.Equal("2027-01.2", decision.Outgoing.OfType<LeadHandedToSales>().Single().DefinitionVersion);
    }

    [Fact]
    public void Should_name_activity_types_as_the_json_events_do()
    {
        Assert.Equal("webinarAttended", Activities.NameOf(ActivityType.WebinarAttended));
        Assert.True(Activities.TryParse("productComparisonDownloaded", out var t));
        Assert.Equal(ActivityType.ProductComparisonDownloaded, t);
        Assert.False(Activities.TryParse("7", out _));
    }
}
