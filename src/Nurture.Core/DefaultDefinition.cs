using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>
/// The definition Nurture runs with when the configuration has none: the article's three example businesses
/// (garden landscaping, B2B software, solar) plus a default track. appsettings.example.json spells out the same.
/// </summary>
public static class DefaultDefinition
{
    /// <summary>A call to action in English and German.</summary>
    private static StepLink Link(string english, string german, string url) =>
        new() { Text = english, Texts = new(StringComparer.OrdinalIgnoreCase) { ["de"] = german }, Url = url };
    /// <summary>Every activity but an email open (Apple Mail Privacy Protection opens every mail) and a look at the careers page.</summary>
    private static readonly string[] Engagements =
    [
        "whitepaperDownloaded", "formSubmitted", "webinarRegistered", "webinarAttended", "trialStarted", "tutorialViewed", "pricingPageViewed",
        "productComparisonDownloaded", "calculatorRequested", "demoRequested", "emailClicked",
    ];

    public static Definition Create() => new()
    {
        Name = "Shared MQL definition",
        Version = "2026-11.3",
        Scoring = new ScoringRules
        {
            Activities = new(StringComparer.OrdinalIgnoreCase)
            {
                ["whitepaperDownloaded"] = new() { Points = 10, Cap = 20 },
                ["formSubmitted"] = new() { Points = 15, Cap = 30 },
                ["webinarRegistered"] = new() { Points = 10, Cap = 20 },
                ["webinarAttended"] = new() { Points = 20, Cap = 40 },
                ["trialStarted"] = new() { Points = 30, Cap = 30 },
                ["tutorialViewed"] = new() { Points = 5, Cap = 20 },
                ["pricingPageViewed"] = new() { Points = 10, Cap = 20 },
                ["productComparisonDownloaded"] = new() { Points = 20, Cap = 20 },
                ["calculatorRequested"] = new() { Points = 25, Cap = 25 },
                ["demoRequested"] = new() { Points = 40, Cap = 40 },
                ["emailOpened"] = new() { Points = 1, Cap = 5 },
                ["emailClicked"] = new() { Points = 3, Cap = 15 },
                ["careersPageViewed"] = new() { Points = -15, Cap = 30 },
            },
            HalfLifeDays = 30,
            DecayResetActivities = [.. Engagements],
            Fit = new FitRules
            {
                Industries = new(StringComparer.OrdinalIgnoreCase) { ["software"] = 15, ["landscaping"] = 10, ["solar"] = 10 },
                CompanySizes =
                [
                    new() { Min = 1, Max = 9, Points = 5 },
                    new() { Min = 10, Max = 249, Points = 15 },
                    new() { Min = 250, Max = 999, Points = 10 },
                    new() { Min = 1000, Max = int.MaxValue, Points = 5 },
                ],
                Countries = new(StringComparer.OrdinalIgnoreCase) { ["DE"] = 10, ["AT"] = 10, ["CH"] = 10 },
                Roles = new(StringComparer.OrdinalIgnoreCase)
                {
                    ["en"] = new(StringComparer.OrdinalIgnoreCase) { ["owner"] = 10, ["ceo"] = 10, ["founder"] = 10, ["head"] = 10, ["director"] = 10, ["manager"] = 5, ["student"] = -10, ["intern"] = -10 },
                    ["de"] = new(StringComparer.OrdinalIgnoreCase)
                    {
                        ["geschäftsführer"] = 10, ["geschäftsführerin"] = 10, ["inhaber"] = 10, ["inhaberin"] = 10, ["vorstand"] = 10,
                        ["*leiter"] = 10, ["*leiterin"] = 10, ["student"] = -10, ["studentin"] = -10, ["werkstudent"] = -10, ["werkstudentin"] = -10,
                        ["praktikant"] = -10, ["praktikantin"] = -10,
                    },
                },
                BusinessDomainPoints = 5,
                FreeMailDomainPoints = 0,
                FreeMailDomains = ["gmail.com", "gmx.de", "web.de", "yahoo.com", "hotmail.com", "outlook.com", "t-online.de"],
            },
            Negative = new NegativeRules
            {
                Unsubscribed = -30,
                HardBounce = -50,
                CompetitorDomain = -100,
                CompetitorDomains = ["competitor.example"],
            },
        },
        Qualification = new QualificationRules
        {
            MqlThreshold = 50,
            HighIntentActivities = ["formSubmitted", "webinarAttended", "trialStarted", "pricingPageViewed", "productComparisonDownloaded", "calculatorRequested", "demoRequested"],
            MinimumFit = 5,
            MinimumEngagements = 2,
            EngagementActivities = [.. Engagements],
            IntentWindowDays = new(StringComparer.OrdinalIgnoreCase)
            {
                ["formSubmitted"] = 60, ["webinarAttended"] = 60, ["trialStarted"] = 90, ["pricingPageViewed"] = 30,
                ["productComparisonDownloaded"] = 60, ["calculatorRequested"] = 60, ["demoRequested"] = 90,
            },
            DemoteBelow = 25,
            HandOffSlaHours = 48,
        },
        Nurture = new NurtureRules
        {
            Tracks =
            [
                new()
                {
                    Name = "garden", Industries = ["landscaping"],
                    Steps =
                    [
                        new() { DelayDays = 0, Template = "garden-welcome", Links = [Link("See our garden projects", "Unsere Gartenprojekte ansehen", "https://example.com/garden/projects")] },
                        new() { DelayDays = 3, Template = "garden-ideas", Links = [Link("Browse garden ideas", "Gartenideen entdecken", "https://example.com/garden/ideas")] },
                        new() { DelayDays = 7, Template = "garden-consultation", Condition = new() { NotDone = "formSubmitted" }, Links = [Link("Book a free consultation", "Kostenlose Beratung buchen", "https://example.com/garden/consultation")] },
                    ],
                },
                new()
                {
                    Name = "software", Industries = ["software"],
                    Steps =
                    [
                        new()
                        {
                            DelayDays = 0, Template = "software-welcome", Links = [Link("Start your free trial", "Kostenlos testen", "https://example.com/software/trial")],
                            // Does a subject that names the reader's company bring more MQLs than the template's? B is the challenger.
                            Experiment = new()
                            {
                                Name = "software-welcome-subject", WindowDays = 30, Judge = ExperimentOutcome.Mql, Alpha = 0.05, PlannedLeads = 2000,
                                Variants = [new() { Name = "A" }, new() { Name = "B", Subject = "{{ lead.firstName | default: \"Hello\" }}, a trial set up for {{ lead.company | default: \"your team\" }}",
                                    Subjects = new(StringComparer.OrdinalIgnoreCase) { ["de"] = "{{ lead.firstName | default: \"Hallo\" }}, eine Testversion für {{ lead.company | default: \"Ihr Team\" }}" } }],
                            },
                        },
                        new() { DelayDays = 2, Template = "software-tutorials", Links = [Link("Watch the tutorials", "Zu den Tutorials", "https://example.com/software/tutorials")] },
                        new() { DelayDays = 5, Template = "software-webinar", Condition = new() { NotDone = "webinarAttended" }, Links = [Link("Register for the webinar", "Zum Webinar anmelden", "https://example.com/software/webinar"), Link("See the pricing", "Preise ansehen", "https://example.com/software/pricing")] },
                        new() { DelayDays = 9, Template = "software-demo", Condition = new() { MinimumScore = 30 }, Links = [Link("Book a demo", "Demo vereinbaren", "https://example.com/software/demo")] },
                    ],
                },
                new()
                {
                    Name = "solar", Industries = ["solar"],
                    Steps =
                    [
                        new() { DelayDays = 0, Template = "solar-welcome", Links = [Link("How solar pays off", "So rechnet sich Solar", "https://example.com/solar/guide")] },
                        new() { DelayDays = 3, Template = "solar-comparison", Links = [Link("Download the product comparison", "Produktvergleich herunterladen", "https://example.com/solar/comparison")] },
                        new() { DelayDays = 7, Template = "solar-calculator", Condition = new() { NotDone = "calculatorRequested" }, Links = [Link("Calculate your savings", "Ersparnis berechnen", "https://example.com/solar/calculator")] },
                    ],
                },
                new()
                {
                    Name = "default",
                    Steps =
                    [
                        new() { DelayDays = 0, Template = "welcome", Links = [Link("Visit our website", "Zu unserer Website", "https://example.com/")] },
                        new() { DelayDays = 5, Template = "value", Links = [Link("Talk to us", "Sprechen Sie mit uns", "https://example.com/contact")] },
                    ],
                },
            ],
            SendWindow = new SendWindow
            {
                Days = [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday],
                StartHour = 9,
                EndHour = 17,
                DefaultTimeZone = "Europe/Berlin",
            },
            FrequencyCap = new FrequencyCap { MaxEmails = 2, PerDays = 7 },
            GoalStages = [LeadStage.Sql, LeadStage.Customer, LeadStage.Disqualified],
        },
        Value = new ValueRules { PriorCloseRate = 0.2, PriorWeight = 10, PriorAverageRevenue = 500m, Currency = "EUR", SalesCycleDays = 30 },
    };
}
