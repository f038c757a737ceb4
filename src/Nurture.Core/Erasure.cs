using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>
/// What a privacy erase leaves of a lead's events and of the texts made from them: every free text that may name or
/// describe a person becomes <see cref="Marker"/>. Rows are rewritten, never deleted, so every count stays as it was.
/// The segment fields the funnel needs (source, industry, company size, country, time zone, language) are kept, as
/// on the lead (<see cref="LeadProfile.Erased"/>).
/// </summary>
public static class Erasure
{
    public const string Marker = "erased";

    /// <summary>Stands in for the address in a stored capture: the reader wants an address there.</summary>
    public const string Email = "erased@erased.invalid";

    /// <summary>The reasons whose tail is a free text the event brought in (see <see cref="Lifecycle.Decide"/>).</summary>
    private static readonly string[] FreeTextReasons = ["rejected by sales: ", "deal lost: ", "disqualified: "];

    /// <summary>An incoming event with its free texts erased; activity properties are dropped but for the machine-click mark the score needs.</summary>
    public static LeadEvent Blank(LeadEvent e) => e switch
    {
        LeadCaptured c => c with { Email = Email, FirstName = null, LastName = null, Company = null, Role = null, Consent = false },
        LeadActivityRecorded a when a.Properties is { Count: > 0 } p => a with
        {
            Properties = p.TryGetValue(Clicks.Machine, out var machine) ? new Dictionary<string, string> { [Clicks.Machine] = machine } : null,
        },
        LeadAcceptedBySales s when s.SalesRep is not null => s with { SalesRep = Marker },
        LeadQualifiedBySales s when s.SalesRep is not null => s with { SalesRep = Marker },
        LeadRejectedBySales r => r with { Reason = Marker },
        DealLost l when l.Reason is not null => l with { Reason = Marker },
        LeadDisqualified d => d with { Reason = Marker },
        LeadUnsubscribed u when u.Channel is not null => u with { Channel = Marker },
        EmailBounced b when b.Reason is not null => b with { Reason = Marker },
        LeadStageChanged s => s with { Reason = Reason(s.Reason) },
        _ => e,
    };

    /// <summary>Any stored message about the lead: its incoming events as <see cref="Blank(LeadEvent)"/>, Nurture's own as they are but for reasons.</summary>
    public static NurtureMessage Blank(NurtureMessage message) => message is LeadEvent e ? Blank(e) : message;

    /// <summary>A transition reason as the erased event would have made it: "rejected by sales: no budget" → "rejected by sales: erased".</summary>
    public static string Reason(string reason)
    {
        foreach (var prefix in FreeTextReasons)
        {
            if (reason.StartsWith(prefix, StringComparison.Ordinal)) return prefix + Marker;
        }
        return reason;
    }
}
