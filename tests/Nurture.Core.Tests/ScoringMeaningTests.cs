using Nurture.Contracts;

namespace Nurture.Core.Tests;

/// <summary>What a score means: role words as whole words in the lead's language, opens that count for little, intent that expires, decay stamped when it happened.</summary>
public class When_the_score_is_read_by_a_person
{
    private static double RolePoints(string role, string language = "de", Action<Dictionary<string, Dictionary<string, double>>>? roles = null) =>
        RoleLines(role, language, roles).Sum(l => l.Points);

    private static List<ScoreLine> RoleLines(string role, string language = "de", Action<Dictionary<string, Dictionary<string, double>>>? roles = null)
    {
        var given = new Given();
        roles?.Invoke(given.Definition.Scoring.Fit.Roles);
        var lead = Lead.New("l", Given.Start) with { Profile = LeadProfile.From(given.Captured(role: role)) with { Language = language } };
        return Scoring.Score(lead, Given.Start, given.Definition).Lines.Where(l => l.Rule.StartsWith("fit:role", StringComparison.Ordinal)).ToList();
    }

    [Theory]
    [InlineData("Headhunter", 0)]
    [InlineData("Homeowner", 0)]
    [InlineData("Head of IT", 10)]
    [InlineData("Marketing Manager", 5)]
    [InlineData("Geschäftsführer", 10)]
    [InlineData("Inhaber", 10)]
    [InlineData("Leiterin Marketing", 10)]
    [InlineData("Vertriebsleiter", 10)]
    [InlineData("Werkstudent", -10)]
    [InlineData("Studentin", -10)]
    public void Should_match_role_words_as_whole_words_in_german_and_english(string role, double points) =>
        Assert.Equal(points, RolePoints(role));

    [Theory]
    [InlineData("Gescha\u0308ftsfu\u0308hrer", 10)] // ä and ü typed as a letter and a combining diaeresis
    [InlineData("GESCHA\u0308FTSFU\u0308HRER", 10)]
    [InlineData("HEAD-of-IT", 10)]
    [InlineData("Vertriebs_Leiter", 10)] // an underscore parts words like any other sign
    [InlineData("CEO2", 0)] // digits belong to the word
    [InlineData("Marketing Manager & Owner", 10)] // the best word found
    [InlineData("Werkstudentin / Praktikantin", -10)]
    [InlineData("—", 0)]
    public void Should_read_role_words_as_runs_of_letters_and_digits_in_any_case_and_spelling(string role, double points) =>
        Assert.Equal(points, RolePoints(role));

    [Fact]
    public void Should_keep_a_leftover_accent_inside_its_word_and_never_make_it_a_word_of_its_own()
    {
        void Phrase(Dictionary<string, Dictionary<string, double>> roles) => roles["en"]["head of sales"] = 20;

        Assert.Equal(20, RolePoints("Head of Sales", "en", Phrase));
        Assert.Equal(20, RolePoints("Head \u0301 of Sales", "en", Phrase)); // a mark with no letter before it
        Assert.Equal(20, RolePoints("Head \u2764\uFE0F of Sales", "en", Phrase)); // an emoji and its variation selector
        Assert.Equal(0, RolePoints("Hea\u0331d of Sales", "en", Phrase)); // a mark with no composed letter stays in "hea̱d"
    }

    [Fact]
    public void Should_explain_a_tie_by_the_first_word_in_ordinal_order_and_rank_a_point_value_that_is_no_number_lowest()
    {
        Assert.Equal("fit:role~ceo", Assert.Single(RoleLines("Owner and CEO", "en")).Rule);
        Assert.Equal("fit:role~owner", Assert.Single(RoleLines("CEO and Owner", "en", roles => roles["en"]["ceo"] = double.NaN)).Rule);
    }

    [Fact]
    public void Should_read_a_role_longer_than_any_title()
    {
        Assert.Equal(10, RolePoints(string.Concat(Enumerable.Repeat("Marketing ", 60)) + "Owner", "en"));
    }

    [Fact]
    public void Should_look_only_at_the_words_of_the_leads_language_and_english()
    {
        Assert.Equal(10, RolePoints("Inhaber", ""));
        Assert.Equal(10, RolePoints("Inhaber", "-de"));
        Assert.Equal(10, RolePoints("Inhaber", "de"));
        Assert.Equal(10, RolePoints("Inhaber", "de-AT"));
        Assert.Equal(0, RolePoints("Inhaber", "fr"));
        Assert.Equal(0, RolePoints("Inhaber", "fr_CA"));
        Assert.Equal(10, RolePoints("Owner", "fr"));
    }

    [Fact]
    public void Should_not_let_an_email_open_reset_decay()
    {
        var given = new Given();
        var mql = given.AnMql().Lead;
        given.After(TimeSpan.FromDays(300));

        var opened = given.Apply(mql, given.Did(ActivityType.EmailOpened));

        // Trial 30 + demo 40 + the open's 1 point, all decayed for 300 days (half-life 30): 71 / 1024 ≈ 0.07, not 71.
        Assert.Equal(0.07, opened.Score.Behaviour);
        Assert.Equal(LeadStage.Mql, opened.Lead.Stage);
    }

    [Fact]
    public void Should_not_hand_a_recycled_lead_to_sales_again_on_two_opens_and_an_old_trial()
    {
        var given = new Given();
        var mql = given.AnMql();
        given.After(TimeSpan.FromDays(1));
        var recycled = given.Apply(mql.Lead, given.Rejected("not now"));
        given.After(TimeSpan.FromDays(300));

        var after = given.Apply(recycled.Lead, given.Did(ActivityType.EmailOpened), given.Did(ActivityType.EmailOpened));

        Assert.Equal(LeadStage.Recycled, after.Lead.Stage);
        Assert.Equal(0, after.Lead.EngagementsSinceRecycle);
    }

    [Fact]
    public void Should_let_high_intent_expire_after_its_window()
    {
        var given = new Given();
        var trial = given.Apply(null, given.Captured(), given.Did(ActivityType.TrialStarted)); // one engagement: the guard holds it
        given.After(TimeSpan.FromDays(100)); // the trial's window is 90 days
        var download = given.Apply(trial.Lead, given.Did(ActivityType.WhitepaperDownloaded));

        Assert.True(download.Score.Total >= 50, $"score {download.Score.Total}");
        Assert.Equal(LeadStage.Lead, download.Lead.Stage);
        Assert.StartsWith("high intent expired", Lifecycle.Qualifies(download.Lead, download.Score, given.Definition, given.Now).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_stamp_a_decay_demotion_when_the_score_fell_below_the_floor_not_when_it_was_checked()
    {
        var given = new Given();
        var mql = given.Apply(null, given.Captured("solar", 2000, "US", "lea@gmx.de", "Student"),
            given.Did(ActivityType.TrialStarted), given.Did(ActivityType.DemoRequested)).Lead;
        Assert.Equal(LeadStage.Mql, mql.Stage);

        var demoted = Lifecycle.Rescore(mql, given.Now.AddDays(200), given.Definition, Guid.NewGuid());

        // Fit 5 (solar 10, 2000 staff 5, student -10), behaviour 70; the floor is 25: 70 · 0.5^(d/30) + 5 = 25,
        // d = 30 · log2(3.5) = 54.22 days after the demo request.
        var transition = Assert.Single(demoted.Transitions);
        Assert.Equal(given.Now.AddDays(54.22).UtcTicks, transition.At.UtcTicks, (double)TimeSpan.FromMinutes(15).Ticks);
        Assert.Equal(transition.At, Assert.IsType<LeadStageChanged>(Assert.Single(demoted.Outgoing)).OccurredAt);
        Assert.Equal(LeadStage.Lead, demoted.Lead.Stage);
    }
}
