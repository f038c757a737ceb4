using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Core.Tests;

/// <summary>Test-data builders: events for one lead on a clock that moves forward.</summary>
public sealed class Given
{
    public static readonly DateTimeOffset Start = new(2026, 3, 2, 9, 0, 0, TimeSpan.Zero); // a Monday
    private int _ids;

    public Given(string leadId = "lead-1") => LeadId = leadId;

    public string LeadId { get; }
    public DateTimeOffset Now { get; private set; } = Start;
    public Definition Definition { get; init; } = DefaultDefinition.Create();

    public Given After(TimeSpan t)
    {
        Now += t;
        return this;
    }

    public Guid NextId() => Lifecycle.DerivedId(Guid.Empty, $"test/{LeadId}/{++_ids}");

    public LeadCaptured Captured(string industry = "software", int size = 50, string country = "DE", string email = "anna@softwarehaus.example",
        string? role = "Head of IT", string source = "webinar", bool consent = true, string? timeZone = "Europe/Berlin") => new()
    {
        EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Email = email, FirstName = "Anna", LastName = "Schmidt",
        Company = "Softwarehaus GmbH", Role = role, Industry = industry, CompanySize = size, Country = country,
        TimeZone = timeZone, Language = "de", Source = source, Consent = consent,
    };

    public LeadActivityRecorded Did(ActivityType activity) => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Activity = activity };

    public LeadAcceptedBySales Accepted() => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now };
    public LeadRejectedBySales Rejected(string reason = "no budget") => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Reason = reason };
    public LeadQualifiedBySales Qualified() => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now };
    public DealWon Won(decimal revenue = 500m) => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Revenue = revenue, Currency = "EUR" };
    public DealLost Lost() => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Reason = "price" };
    public LeadDisqualified Disqualified() => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Reason = "student" };
    public LeadUnsubscribed Unsubscribed() => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now };
    public EmailBounced Bounced(BounceKind kind = BounceKind.Hard) => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now, Kind = kind };
    public LeadErased Erased() => new() { EventId = NextId(), LeadId = LeadId, OccurredAt = Now };

    /// <summary>Applies events in order and returns the last decision.</summary>
    public LeadDecision Apply(Lead? lead, params LeadEvent[] events)
    {
        LeadDecision? last = null;
        foreach (var e in events)
        {
            last = Lifecycle.Decide(lead, e, Definition);
            lead = last.Lead;
        }
        return last ?? throw new ArgumentException("no events", nameof(events));
    }

    /// <summary>A software lead that the default definition calls an MQL: a trial and a demo request.</summary>
    public LeadDecision AnMql()
    {
        var captured = Apply(null, Captured());
        After(TimeSpan.FromHours(1));
        var trial = Apply(captured.Lead, Did(ActivityType.TrialStarted));
        After(TimeSpan.FromHours(1));
        return Apply(trial.Lead, Did(ActivityType.DemoRequested));
    }
}
