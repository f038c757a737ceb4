using System.Collections.Immutable;
using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>The personal and firmographic fields of a lead. A privacy erase blanks the personal ones.</summary>
public sealed record LeadProfile
{
    public string? Email { get; init; }
    public string? FirstName { get; init; }
    public string? LastName { get; init; }
    public string? Company { get; init; }
    public string? Role { get; init; }
    public string? Industry { get; init; }
    public int? CompanySize { get; init; }
    public string? Country { get; init; }
    public string? TimeZone { get; init; }
    public string? Language { get; init; }
    public string Source { get; init; } = "unknown";
    public bool Consent { get; init; }

    public string? EmailDomain => Email is { } e && e.LastIndexOf('@') is var at and >= 0 ? e[(at + 1)..].ToLowerInvariant() : null;

    public static LeadProfile From(LeadCaptured e) => new()
    {
        Email = e.Email.Trim(),
        FirstName = e.FirstName,
        LastName = e.LastName,
        Company = e.Company,
        Role = e.Role,
        Industry = e.Industry,
        CompanySize = e.CompanySize,
        Country = e.Country,
        TimeZone = e.TimeZone,
        Language = e.Language,
        Source = string.IsNullOrWhiteSpace(e.Source) ? "unknown" : e.Source.Trim().ToLowerInvariant(),
        Consent = e.Consent,
    };

    /// <summary>What is left after a privacy erase: the segment fields the funnel needs, nothing that names a person.</summary>
    public LeadProfile Erased() => this with { Email = null, FirstName = null, LastName = null, Company = null, Role = null, Consent = false };
}

/// <summary>
/// A lead as the domain sees it. Activity is kept as counts per type and the last activity time, so the
/// score depends on what happened, never on the order it arrived in.
/// </summary>
public sealed record Lead
{
    public required string Id { get; init; }
    public LeadStage Stage { get; init; } = LeadStage.Lead;
    public LeadProfile Profile { get; init; } = new();
    public bool Captured { get; init; }
    public ImmutableSortedDictionary<ActivityType, int> Activities { get; init; } = ImmutableSortedDictionary<ActivityType, int>.Empty;
    public DateTimeOffset FirstSeenAt { get; init; }
    /// <summary>The latest activity that resets decay (Scoring:DecayResetActivities): the decay clock starts here.</summary>
    public DateTimeOffset? LastActivityAt { get; init; }
    /// <summary>When each activity type last happened, for the intent windows.</summary>
    public ImmutableSortedDictionary<ActivityType, DateTimeOffset> LastDone { get; init; } = ImmutableSortedDictionary<ActivityType, DateTimeOffset>.Empty;
    public DateTimeOffset StageEnteredAt { get; init; }
    /// <summary>When the lead first became an MQL: its cohort for the close rate.</summary>
    public DateTimeOffset? FirstMqlAt { get; init; }
    /// <summary>Engagements (Qualification:EngagementActivities) since the lead was captured or last recycled: the guard against handing over too early.</summary>
    public int EngagementsSinceRecycle { get; init; }
    public bool Unsubscribed { get; init; }
    public bool HardBounced { get; init; }
    public bool Erased { get; init; }
    public string? RecycleReason { get; init; }
    public decimal Revenue { get; init; }
    public int DealsWon { get; init; }
    public string? DefinitionVersion { get; init; }
    /// <summary>The furthest funnel stage reached (Lead, MQL, SAL, SQL, Customer), for conversion rates.</summary>
    public LeadStage Furthest { get; init; } = LeadStage.Lead;
    /// <summary>The latest event applied, in history order (time, then event id): an older one arriving later is a late event.</summary>
    public DateTimeOffset? LastEventAt { get; init; }
    public Guid LastEventId { get; init; }

    public static Lead New(string id, DateTimeOffset at) => new() { Id = id, FirstSeenAt = at, StageEnteredAt = at };
}
