using System.Text.Json.Serialization;

namespace Nurture.Contracts;

/// <summary>
/// What every message shares: an id that makes redelivery harmless, the time it happened,
/// and the version of its JSON shape. Lead messages also name the lead.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(LeadCaptured), nameof(LeadCaptured))]
[JsonDerivedType(typeof(LeadActivityRecorded), nameof(LeadActivityRecorded))]
[JsonDerivedType(typeof(LeadAcceptedBySales), nameof(LeadAcceptedBySales))]
[JsonDerivedType(typeof(LeadRejectedBySales), nameof(LeadRejectedBySales))]
[JsonDerivedType(typeof(LeadQualifiedBySales), nameof(LeadQualifiedBySales))]
[JsonDerivedType(typeof(DealWon), nameof(DealWon))]
[JsonDerivedType(typeof(DealLost), nameof(DealLost))]
[JsonDerivedType(typeof(LeadDisqualified), nameof(LeadDisqualified))]
[JsonDerivedType(typeof(LeadUnsubscribed), nameof(LeadUnsubscribed))]
[JsonDerivedType(typeof(EmailBounced), nameof(EmailBounced))]
[JsonDerivedType(typeof(LeadErased), nameof(LeadErased))]
[JsonDerivedType(typeof(CampaignSpendRecorded), nameof(CampaignSpendRecorded))]
[JsonDerivedType(typeof(LeadScored), nameof(LeadScored))]
[JsonDerivedType(typeof(LeadStageChanged), nameof(LeadStageChanged))]
[JsonDerivedType(typeof(LeadHandedToSales), nameof(LeadHandedToSales))]
[JsonDerivedType(typeof(NurtureEmailScheduled), nameof(NurtureEmailScheduled))]
[JsonDerivedType(typeof(NurtureEmailSent), nameof(NurtureEmailSent))]
[JsonDerivedType(typeof(MqlValueCalculated), nameof(MqlValueCalculated))]
[JsonDerivedType(typeof(HandOffSlaBreached), nameof(HandOffSlaBreached))]
public abstract record NurtureMessage
{
    public required Guid EventId { get; init; }

    public required DateTimeOffset OccurredAt { get; init; }

    public int SchemaVersion { get; init; } = 1;
}

/// <summary>A message about one lead. The lead id is the publisher's own (a CRM or form-tool id).</summary>
public abstract record LeadEvent : NurtureMessage
{
    public required string LeadId { get; init; }
}
