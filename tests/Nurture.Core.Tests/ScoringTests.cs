using Nurture.Contracts;

namespace Nurture.Core.Tests;

public class When_a_lead_is_scored
{
    private readonly Given _given = new();

    [Theory]
    [InlineData(ActivityType.WhitepaperDownloaded, 1, 10)]
    [InlineData(ActivityType.WhitepaperDownloaded, 2, 20)]
    [InlineData(ActivityType.WhitepaperDownloaded, 5, 20)] // capped at 20
    [InlineData(ActivityType.DemoRequested, 1, 40)]
    [InlineData(ActivityType.TutorialViewed, 3, 15)]
    [InlineData(ActivityType.EmailOpened, 9, 5)] // capped at 5
    [InlineData(ActivityType.CareersPageViewed, 1, -15)]
    [InlineData(ActivityType.CareersPageViewed, 4, -30)] // negative signals are capped by size too
    public void Should_give_behaviour_points_per_activity_type_up_to_its_cap(ActivityType activity, int times, double expected)
    {
        var events = Enumerable.Range(0, times).Select(_ => _given.Did(activity)).ToArray();
        var lead = _given.Apply(null, events).Lead;

        var score = Scoring.Score(lead, _given.Now, _given.Definition);

        Assert.Equal(expected, score.Behaviour);
        Assert.Contains(score.Lines, l => l.Rule.StartsWith($"activity:{Activities.NameOf(activity)} x{times}", StringComparison.Ordinal) && l.Points == expected);
    }

    [Theory]
    [InlineData("software", 50, "DE", "Head of IT", "anna@softwarehaus.example", 15 + 15 + 10 + 10 + 5)]
    [InlineData("landscaping", 5, "AT", "Owner", "max@gartenbau.example", 10 + 5 + 10 + 10 + 5)]
    [InlineData("solar", 2000, "US", "Student", "lea@gmx.de", 10 + 5 + 0 - 10 + 0)]
    [InlineData("bakery", 0, "FR", null, "x@gmail.com", 0)]
    public void Should_give_fit_points_from_the_leads_attributes(string industry, int size, string country, string? role, string email, double expected)
    {
        var lead = _given.Apply(null, _given.Captured(industry, size, country, email, role)).Lead;

        var score = Scoring.Score(lead, _given.Now, _given.Definition);

        Assert.Equal(expected, score.Fit);
        Assert.Equal(0, score.Behaviour);
    }

    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(30, 0.5)]
    [InlineData(60, 0.25)]
    [InlineData(90, 0.125)]
    public void Should_halve_behaviour_points_every_half_life_of_inactivity(int idleDays, double factor)
    {
        var lead = _given.Apply(null, _given.Did(ActivityType.DemoRequested)).Lead;

        var score = Scoring.Score(lead, _given.Now.AddDays(idleDays), _given.Definition);

        Assert.Equal(40 * factor, score.Behaviour, precision: 2);
        if (idleDays > 0) Assert.Contains(score.Lines, l => l.Rule.StartsWith("decay:", StringComparison.Ordinal) && l.Points < 0);
    }

    [Fact]
    public void Should_not_decay_when_the_half_life_is_zero()
    {
        var definition = DefaultDefinition.Create();
        definition.Scoring.HalfLifeDays = 0;
        var lead = _given.Apply(null, _given.Did(ActivityType.DemoRequested)).Lead;

        Assert.Equal(40, Scoring.Score(lead, _given.Now.AddDays(365), definition).Behaviour);
    }

    [Fact]
    public void Should_take_points_for_unsubscribe_hard_bounce_and_a_competitor_domain()
    {
        var lead = _given.Apply(null, _given.Captured(email: "spy@competitor.example"), _given.Unsubscribed(), _given.Bounced()).Lead;

        var score = Scoring.Score(lead, _given.Now, _given.Definition);

        Assert.Equal(-30 - 50 - 100, score.Negative);
        Assert.Contains(score.Lines, l => l.Rule == "negative:unsubscribed" && l.Points == -30);
        Assert.Contains(score.Lines, l => l.Rule == "negative:hard bounce" && l.Points == -50);
        Assert.Contains(score.Lines, l => l.Rule.StartsWith("negative:competitor domain", StringComparison.Ordinal) && l.Points == -100);
        Assert.DoesNotContain(score.Lines, l => l.Rule == "fit:business domain");
    }

    [Fact]
    public void Should_ignore_a_soft_bounce_in_the_score()
    {
        var decision = _given.Apply(null, _given.Captured(), _given.Bounced(BounceKind.Soft));

        Assert.Equal(0, decision.Score.Negative);
        Assert.NotNull(decision.Ignored);
    }

    [Fact]
    public void Should_explain_every_point_of_the_total()
    {
        var decision = _given.Apply(null, _given.Captured(), _given.Did(ActivityType.TrialStarted), _given.Did(ActivityType.CareersPageViewed));
        var later = Scoring.Score(decision.Lead, _given.Now.AddDays(12), _given.Definition);

        Assert.Equal(later.Total, later.Lines.Sum(l => l.Points), precision: 1);
    }
}
