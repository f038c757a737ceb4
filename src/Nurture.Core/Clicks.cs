using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>
/// Clicks on the links of nurture emails. Link scanners and prefetchers click too: their clicks are recorded with the
/// property <c>machine=true</c> and count for nothing (no points, no engagement), so only people qualify a lead.
/// </summary>
public static class Clicks
{
    public const string Machine = "machine";

    /// <summary>The properties a tracked click names its email by (the redirect writes them; <see cref="EmailStep"/> reads them).</summary>
    public const string Track = "track", Step = "step";

    public static bool ByMachine(LeadActivityRecorded activity) =>
        activity.Properties is { } p && p.TryGetValue(Machine, out var value) && string.Equals(value, "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The nurture email a click was on: its track and step as the click's properties name them (a step written as a
    /// plain number, e.g. "2", not "02"); null for any other activity, or a click that names none.
    /// </summary>
    public static (string Track, int Step)? EmailStep(LeadActivityRecorded activity) =>
        activity.Activity == ActivityType.EmailClicked && activity.Properties is { } p
        && p.TryGetValue(Track, out var track) && p.TryGetValue(Step, out var text)
        && int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var step)
        && step.ToString(System.Globalization.CultureInfo.InvariantCulture) == text
            ? (track, step)
            : null;

    /// <summary>
    /// The nurture email a click was on, when it is a step of a track the definition names; otherwise null. What is kept
    /// of a click beside its event is then a name from the definition, never free text a publisher put there.
    /// </summary>
    public static (string Track, int Step)? EmailStep(LeadActivityRecorded activity, Definition definition) =>
        EmailStep(activity) is var (track, step) && definition.Nurture.Tracks.Find(t => t.Name == track) is { } named && step < named.Steps.Count
            ? (track, step)
            : null;

    /// <summary>
    /// Whether a click looks like a machine's: a HEAD request, a click within <paramref name="afterDelivery"/> of the
    /// email going out, or another link of the same email clicked within <paramref name="burst"/> of this one.
    /// </summary>
    public static string? MachineReason(bool head, DateTimeOffset sentAt, DateTimeOffset clickedAt, IEnumerable<(int Link, DateTimeOffset At)> otherClicksOfTheEmail,
        int link, TimeSpan afterDelivery, TimeSpan burst)
    {
        if (head) return "HEAD request";
        if (clickedAt - sentAt < afterDelivery) return $"clicked within {afterDelivery.TotalSeconds:0} s of delivery";
        return otherClicksOfTheEmail.Any(c => c.Link != link && (clickedAt - c.At).Duration() <= burst)
            ? $"another link of the email clicked within {burst.TotalSeconds:0.#} s"
            : null;
    }
}
