namespace Nurture.Contracts;

// What marketing-automation pipelines and sales tools tell Nurture.

/// <summary>A new lead: a form, a download, a webinar sign-up. Consent is the lead's consent to marketing email.</summary>
public sealed record LeadCaptured : LeadEvent
{
    public required string Email { get; init; }
    public string? FirstName { get; init; }
    public string? LastName { get; init; }
    public string? Company { get; init; }
    public string? Role { get; init; }
    public string? Industry { get; init; }
    public int? CompanySize { get; init; }
    /// <summary>ISO 3166-1 alpha-2, e.g. "DE".</summary>
    public string? Country { get; init; }
    /// <summary>IANA time zone, e.g. "Europe/Berlin"; send windows use it.</summary>
    public string? TimeZone { get; init; }
    /// <summary>Two-letter language code, e.g. "de"; templates are chosen by it.</summary>
    public string? Language { get; init; }
    /// <summary>The channel the lead came from, e.g. "facebook-ads", "webinar", "organic".</summary>
    public required string Source { get; init; }
    public required bool Consent { get; init; }
}

public enum ActivityType
{
    WhitepaperDownloaded,
    FormSubmitted,
    WebinarRegistered,
    WebinarAttended,
    TrialStarted,
    TutorialViewed,
    PricingPageViewed,
    ProductComparisonDownloaded,
    CalculatorRequested,
    DemoRequested,
    EmailOpened,
    EmailClicked,
    CareersPageViewed,
}

/// <summary>Something the lead did. Properties are free (asset name, page URL, campaign) and kept in the history.</summary>
public sealed record LeadActivityRecorded : LeadEvent
{
    public required ActivityType Activity { get; init; }
    public IReadOnlyDictionary<string, string>? Properties { get; init; }
}

/// <summary>Sales accepted the hand-over: the lead is a Sales Accepted Lead (SAL).</summary>
public sealed record LeadAcceptedBySales : LeadEvent
{
    public string? SalesRep { get; init; }
}

/// <summary>Sales sent the lead back: it is recycled into nurture, and the reason is kept.</summary>
public sealed record LeadRejectedBySales : LeadEvent
{
    public required string Reason { get; init; }
}

/// <summary>Sales confirmed a real opportunity: the lead is a Sales Qualified Lead (SQL).</summary>
public sealed record LeadQualifiedBySales : LeadEvent
{
    public string? SalesRep { get; init; }
}

public sealed record DealWon : LeadEvent
{
    public required decimal Revenue { get; init; }
    /// <summary>ISO 4217, e.g. "EUR".</summary>
    public required string Currency { get; init; }
}

public sealed record DealLost : LeadEvent
{
    public string? Reason { get; init; }
}

public sealed record LeadDisqualified : LeadEvent
{
    public required string Reason { get; init; }
}

public sealed record LeadUnsubscribed : LeadEvent
{
    /// <summary>Where the lead unsubscribed, e.g. "list-unsubscribe", "preference-center".</summary>
    public string? Channel { get; init; }
}

public enum BounceKind
{
    Hard,
    Soft,
}

public sealed record EmailBounced : LeadEvent
{
    public required BounceKind Kind { get; init; }
    public string? Reason { get; init; }
}

/// <summary>A privacy request: the lead's personal fields are blanked; counts and stages stay for the funnel.</summary>
public sealed record LeadErased : LeadEvent;

/// <summary>Money spent on a channel over a period. Not about one lead, so it carries no lead id.</summary>
public sealed record CampaignSpendRecorded : NurtureMessage
{
    public required string Channel { get; init; }
    public required decimal Amount { get; init; }
    public required string Currency { get; init; }
    public required DateOnly PeriodStart { get; init; }
    public required DateOnly PeriodEnd { get; init; }
}
