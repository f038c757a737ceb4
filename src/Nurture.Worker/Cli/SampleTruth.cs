using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Cli;

/// <summary>
/// The hidden rules by which the sample's and the demo's leads win deals once sales has qualified them, so `calibrate` has
/// a known truth to find. They deliberately disagree with the built-in definition in places: a started trial (30 points
/// there) says nothing about buying here, while a look at the pricing page (10 there) says a lot.
/// </summary>
public static class SampleTruth
{
    /// <summary>Log-odds of a qualified lead winning with none of the signals below (about 25 %).</summary>
    public const double Base = -1.1;

    /// <summary>Log-odds added when the lead did the activity at least once before sales took it up.</summary>
    public static IReadOnlyDictionary<ActivityType, double> Activities { get; } = new Dictionary<ActivityType, double>
    {
        [ActivityType.DemoRequested] = 3.0,
        [ActivityType.PricingPageViewed] = 1.6,
        [ActivityType.WebinarAttended] = 1.2,
        [ActivityType.WhitepaperDownloaded] = 0.4,
        [ActivityType.TrialStarted] = 0,
        [ActivityType.CareersPageViewed] = -1.5,
    };

    /// <summary>Log-odds added for a student: interested, not buying.</summary>
    public const double Student = -1.5;

    /// <summary>The chance that a qualified lead, as it stands, wins its deal.</summary>
    public static double WinChance(Lead lead)
    {
        var z = Base + Activities.Where(a => lead.Activities.GetValueOrDefault(a.Key) > 0).Sum(a => a.Value);
        if (lead.Profile.Role?.Contains("student", StringComparison.OrdinalIgnoreCase) == true) z += Student;
        return Logistic.Sigmoid(z);
    }
}
