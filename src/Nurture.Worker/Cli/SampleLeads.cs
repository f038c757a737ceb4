using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Cli;

/// <summary>
/// Realistic lead histories for the article's three example businesses: a garden-landscaping business,
/// a B2B software company and a solar installer. Seeded, so the same seed always gives the same events.
/// Sales outcomes follow the domain's own decisions (sales only accepts what was handed over, mostly). Two truths are
/// planted: the challenger of each track's experiment converts more (<see cref="PlantedLift"/>), and whether a
/// qualified lead wins its deal follows <see cref="SampleTruth"/>'s hidden rules.
/// </summary>
public static class SampleLeads
{
    private sealed record Business(string Industry, string[] Sources, ActivityType[] Journey, (decimal Min, decimal Max) Deal, string Domain);

    private static readonly Business[] Businesses =
    [
        new("landscaping", ["facebook-ads", "seo", "referral"],
            [ActivityType.WhitepaperDownloaded, ActivityType.EmailOpened, ActivityType.FormSubmitted, ActivityType.EmailClicked, ActivityType.PricingPageViewed, ActivityType.WhitepaperDownloaded],
            (800m, 6000m), "gartenbau"),
        new("software", ["google-ads", "webinar", "linkedin"],
            [ActivityType.WebinarRegistered, ActivityType.TrialStarted, ActivityType.TutorialViewed, ActivityType.TutorialViewed, ActivityType.WebinarAttended, ActivityType.PricingPageViewed, ActivityType.DemoRequested],
            (2000m, 18000m), "softwarehaus"),
        new("solar", ["facebook-ads", "comparison-portal", "seo"],
            [ActivityType.ProductComparisonDownloaded, ActivityType.EmailOpened, ActivityType.CalculatorRequested, ActivityType.EmailClicked, ActivityType.FormSubmitted],
            (7000m, 24000m), "solartechnik"),
    ];

    private static readonly string[] FirstNames = ["Anna", "Jonas", "Lea", "Felix", "Marie", "Lukas", "Sophie", "Paul", "Emma", "Ben", "Mia", "Elias", "Julia", "Noah"];
    private static readonly string[] LastNames = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch"];
    private static readonly string[] Roles = ["Owner", "CEO", "Head of Operations", "Marketing Manager", "IT Director", "Student", "Assistant"];
    private static readonly (string Country, string Zone, string Language)[] Places =
        [("DE", "Europe/Berlin", "de"), ("DE", "Europe/Berlin", "de"), ("AT", "Europe/Vienna", "de"), ("CH", "Europe/Zurich", "de"), ("GB", "Europe/London", "en"), ("US", "America/New_York", "en")];

    /// <summary>Events for <paramref name="leads"/> leads captured over <paramref name="days"/> days from <paramref name="start"/>, sorted by time.</summary>
    public static IReadOnlyList<NurtureMessage> Generate(int leads, int seed, DateTimeOffset start, int days, Definition definition)
    {
        var random = new Random(seed);
        // The planted effect tosses its own coin, so leads outside the experiment keep their draws up to the first challenger.
        var plant = new Random(seed + 1);
        var events = new List<NurtureMessage>();
        Guid NewId()
        {
            Span<byte> bytes = stackalloc byte[16];
            random.NextBytes(bytes);
            bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40);
            bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
            return new Guid(bytes);
        }
        DateTimeOffset Later(DateTimeOffset t, double maxDays) => Seconds(t.AddMinutes(30 + random.NextDouble() * maxDays * 24 * 60));

        for (var i = 0; i < leads; i++)
        {
            var business = Businesses[i % Businesses.Length];
            var id = $"lead-{i + 1:D5}";
            var place = Places[random.Next(Places.Length)];
            var first = FirstNames[random.Next(FirstNames.Length)];
            var last = LastNames[random.Next(LastNames.Length)];
            var freeMail = random.NextDouble() < 0.35;
            var at = Seconds(start.AddMinutes(random.NextDouble() * days * 24 * 60));
            var captured = new LeadCaptured
            {
                EventId = NewId(), LeadId = id, OccurredAt = at,
                Email = $"{first}.{last}{i}@{(freeMail ? "gmx.de" : $"{business.Domain}-{i % 40}.example")}".ToLowerInvariant().Replace("ü", "ue", StringComparison.Ordinal),
                FirstName = first, LastName = last,
                Company = freeMail ? null : $"{last} {business.Domain} GmbH",
                Role = Roles[random.Next(Roles.Length)],
                Industry = business.Industry,
                CompanySize = random.Next(4) switch { 0 => random.Next(1, 10), 1 or 2 => random.Next(10, 250), _ => random.Next(250, 2000) },
                Country = place.Country, TimeZone = place.Zone, Language = place.Language,
                Source = business.Sources[random.Next(business.Sources.Length)],
                Consent = random.NextDouble() < 0.92,
            };
            var history = new List<LeadEvent> { captured };

            // How far along the business's typical journey this lead gets, with some noise.
            var depth = random.Next(business.Journey.Length + 1);
            // The planted truth: a lead that gets the challenger (the last variant) of an experiment on its track
            // goes all the way along the journey more often — the experiment report must find it.
            if (depth < business.Journey.Length && captured.Consent && Challenger(LeadProfile.From(captured), id, definition) && plant.NextDouble() < PlantedLift)
            {
                depth = business.Journey.Length;
            }
            for (var step = 0; step < depth; step++)
            {
                at = Later(at, 6);
                var activity = random.NextDouble() < 0.2 ? ActivityType.EmailOpened : business.Journey[step];
                history.Add(new LeadActivityRecorded { EventId = NewId(), LeadId = id, OccurredAt = at, Activity = activity });
            }
            if (random.NextDouble() < 0.05)
            {
                at = Later(at, 10);
                history.Add(new LeadActivityRecorded { EventId = NewId(), LeadId = id, OccurredAt = at, Activity = ActivityType.CareersPageViewed });
            }

            Lead? lead = null;
            foreach (var e in history) lead = Lifecycle.Decide(lead, e, definition).Lead;

            void Add(LeadEvent e)
            {
                history.Add(e);
                lead = Lifecycle.Decide(lead, e, definition).Lead;
            }

            // Some MQLs wait for sales: they are the hand-off SLA's concern.
            if (lead!.Stage == LeadStage.Mql && random.NextDouble() < 0.85)
            {
                at = Later(at, 3);
                if (random.NextDouble() < 0.75)
                {
                    Add(new LeadAcceptedBySales { EventId = NewId(), LeadId = id, OccurredAt = at, SalesRep = $"rep-{random.Next(1, 4)}" });
                    at = Later(at, 10);
                    if (random.NextDouble() < 0.6)
                    {
                        Add(new LeadQualifiedBySales { EventId = NewId(), LeadId = id, OccurredAt = at });
                        at = Later(at, 20);
                        if (random.NextDouble() < SampleTruth.WinChance(lead))
                        {
                            var revenue = decimal.Round(business.Deal.Min + (business.Deal.Max - business.Deal.Min) * (decimal)random.NextDouble(), 0);
                            Add(new DealWon { EventId = NewId(), LeadId = id, OccurredAt = at, Revenue = revenue, Currency = "EUR" });
                        }
                        else
                        {
                            Add(new DealLost { EventId = NewId(), LeadId = id, OccurredAt = at, Reason = "chose a competitor" });
                        }
                    }
                    else if (random.NextDouble() < 0.5)
                    {
                        Add(new LeadDisqualified { EventId = NewId(), LeadId = id, OccurredAt = at, Reason = "no budget this year" });
                    }
                }
                else
                {
                    Add(new LeadRejectedBySales { EventId = NewId(), LeadId = id, OccurredAt = at, Reason = "not ready to buy" });
                }
            }
            else if (random.NextDouble() < 0.03)
            {
                // Sales sometimes closes a lead marketing never qualified: recorded as it happened, stages not invented.
                at = Later(at, 15);
                Add(new DealWon { EventId = NewId(), LeadId = id, OccurredAt = at, Revenue = business.Deal.Min, Currency = "EUR" });
            }

            var roll = random.NextDouble();
            if (roll < 0.05) Add(new LeadUnsubscribed { EventId = NewId(), LeadId = id, OccurredAt = Later(at, 5), Channel = "list-unsubscribe" });
            else if (roll < 0.07) Add(new EmailBounced { EventId = NewId(), LeadId = id, OccurredAt = Later(at, 2), Kind = BounceKind.Hard, Reason = "550 mailbox unavailable" });
            events.AddRange(history);
        }

        foreach (var source in Businesses.SelectMany(b => b.Sources).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            for (var month = 0; month < Math.Max(1, days / 30); month++)
            {
                var from = DateOnly.FromDateTime(start.UtcDateTime).AddMonths(month);
                events.Add(new CampaignSpendRecorded
                {
                    EventId = NewId(), OccurredAt = start.AddDays(30 * (month + 1)), Channel = source,
                    Amount = decimal.Round(300m + 1200m * (decimal)random.NextDouble(), 0), Currency = "EUR",
                    PeriodStart = from, PeriodEnd = from.AddMonths(1).AddDays(-1),
                });
            }
        }
        return events.OrderBy(e => e.OccurredAt).ThenBy(e => e.EventId).ToList();
    }

    /// <summary>The share of the challenger's leads that stopped short of the whole journey and now complete it.</summary>
    public const double PlantedLift = 0.5;

    /// <summary>Whether the lead gets the last variant of the first experiment on its track.</summary>
    public static bool Challenger(LeadProfile profile, string leadId, Definition definition) =>
        NurturePlan.TrackFor(profile, definition).Steps.Select(s => s.Experiment).FirstOrDefault(e => e is not null) is { } experiment
        && Experiments.Assign(experiment, leadId) == experiment.Variants[^1];

    private static DateTimeOffset Seconds(DateTimeOffset t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, t.Offset);
}
