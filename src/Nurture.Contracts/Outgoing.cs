namespace Nurture.Contracts;

// What Nurture tells everyone else. Stages travel as their names (see LeadStage).

public enum LeadStage
{
    Lead,
    Mql,
    Sal,
    Sql,
    Customer,
    Disqualified,
    /// <summary>Sales sent it back (or a deal was lost): nurtured again until it re-qualifies.</summary>
    Recycled,
}

public sealed record ScoreLine(string Rule, double Points);

public sealed record LeadScored : LeadEvent
{
    public required double Score { get; init; }
    public required double Behaviour { get; init; }
    public required double Fit { get; init; }
    public required string DefinitionVersion { get; init; }
    public required IReadOnlyList<ScoreLine> Explanation { get; init; }
}

public sealed record LeadStageChanged : LeadEvent
{
    public required LeadStage From { get; init; }
    public required LeadStage To { get; init; }
    public required string Reason { get; init; }
    public required string DefinitionVersion { get; init; }
    public string? Source { get; init; }
    /// <summary>Stages the data jumped over (e.g. a deal won for a lead that was never an MQL). Never invented.</summary>
    public IReadOnlyList<LeadStage> Skipped { get; init; } = [];
}

public sealed record LeadHandedToSales : LeadEvent
{
    public required double Score { get; init; }
    public required string DefinitionVersion { get; init; }
    public required IReadOnlyList<ScoreLine> Explanation { get; init; }
    public string? Source { get; init; }
}

public sealed record NurtureEmailScheduled : LeadEvent
{
    public required string Track { get; init; }
    public required int Step { get; init; }
    public required string Template { get; init; }
    public required DateTimeOffset DueAt { get; init; }
}

public sealed record NurtureEmailSent : LeadEvent
{
    public required string Track { get; init; }
    public required int Step { get; init; }
    public required string Template { get; init; }
    public required string MessageId { get; init; }
}

/// <summary>An MQL sales has not accepted (or rejected) within the definition's hand-off SLA. Raised once per MQL period.</summary>
public sealed record HandOffSlaBreached : LeadEvent
{
    /// <summary>When the lead became an MQL this time.</summary>
    public required DateTimeOffset MqlSince { get; init; }
    public required double HoursWaiting { get; init; }
    public required int SlaHours { get; init; }
    public string? Source { get; init; }
}

/// <summary>What an MQL is worth: close rate (MQL→customer) × average revenue per customer, with a 95 % interval.</summary>
public sealed record MqlValueCalculated : NurtureMessage
{
    /// <summary>The lead source, or null for all sources together.</summary>
    public string? Source { get; init; }
    public required int MqlsInCohort { get; init; }
    public required int Customers { get; init; }
    public required double CloseRate { get; init; }
    public required double CloseRateLow { get; init; }
    public required double CloseRateHigh { get; init; }
    public required decimal AverageRevenue { get; init; }
    public required decimal Value { get; init; }
    public required decimal ValueLow { get; init; }
    public required decimal ValueHigh { get; init; }
    public required string Currency { get; init; }
    public required string DefinitionVersion { get; init; }
}
