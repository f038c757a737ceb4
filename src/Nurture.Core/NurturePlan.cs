using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>A step that should be sent at <see cref="DueAt"/> (already inside the lead's send window).</summary>
public sealed record StepDue(string Track, int Step, string Template, DateTimeOffset DueAt);

public enum StepVerdict
{
    Send,
    /// <summary>Not now: outside the send window or over the frequency cap. Try again at the given time.</summary>
    Defer,
    /// <summary>The step's condition does not hold: go on to the next step.</summary>
    Skip,
    /// <summary>The lead left nurture (goal stage, unsubscribed, bounced, erased, no consent).</summary>
    Exit,
}

public sealed record StepCheck(StepVerdict Verdict, string Reason, DateTimeOffset? RetryAt = null);

/// <summary>Nurture tracks: which track a lead is on, when each step falls due, and whether it may go out now.</summary>
public static class NurturePlan
{
    /// <summary>The track for the lead's segment (its industry), or the default track.</summary>
    public static NurtureTrack TrackFor(LeadProfile profile, Definition definition)
    {
        var tracks = definition.Nurture.Tracks;
        return (profile.Industry is { } industry
                ? tracks.FirstOrDefault(t => t.Industries.Contains(industry, StringComparer.OrdinalIgnoreCase))
                : null)
            ?? tracks.First(t => t.Industries.Count == 0);
    }

    /// <summary>The first step of the lead's track, due its delay after <paramref name="enrolledAt"/>, moved into the send window.</summary>
    public static StepDue? First(Lead lead, DateTimeOffset enrolledAt, Definition definition) =>
        StepAt(TrackFor(lead.Profile, definition), 0, enrolledAt, lead, definition);

    /// <summary>The step after <paramref name="step"/>, due its delay after <paramref name="previousAt"/> (when the previous one went out or was skipped).</summary>
    public static StepDue? Next(Lead lead, string track, int step, DateTimeOffset previousAt, Definition definition)
    {
        var t = definition.Nurture.Tracks.FirstOrDefault(x => x.Name == track);
        return t is null ? null : StepAt(t, step + 1, previousAt, lead, definition);
    }

    private static StepDue? StepAt(NurtureTrack track, int index, DateTimeOffset from, Lead lead, Definition definition)
    {
        if (index >= track.Steps.Count) return null;
        // A step under an experiment goes out as the lead's variant: its delay and its template.
        var step = Experiments.For(track.Steps[index], lead.Id);
        var due = IntoWindow(from.AddDays(step.DelayDays), lead.Profile.TimeZone, definition.Nurture.SendWindow);
        return new StepDue(track.Name, index, step.Template, due);
    }

    /// <summary>
    /// May this step go out at <paramref name="now"/>? <paramref name="recentSends"/> are the lead's earlier sends
    /// (any track), for the frequency cap.
    /// </summary>
    public static StepCheck Check(Lead lead, string track, int step, DateTimeOffset now, IEnumerable<DateTimeOffset> recentSends, Definition definition)
    {
        var rules = definition.Nurture;
        if (lead.Erased) return new(StepVerdict.Exit, "lead erased");
        if (lead.Unsubscribed) return new(StepVerdict.Exit, "lead unsubscribed");
        if (lead.HardBounced) return new(StepVerdict.Exit, "address bounced");
        if (!lead.Profile.Consent) return new(StepVerdict.Exit, "no consent to marketing email");
        if (rules.GoalStages.Contains(lead.Stage)) return new(StepVerdict.Exit, $"lead reached {lead.Stage}");
        var t = rules.Tracks.FirstOrDefault(x => x.Name == track);
        if (t is null || step >= t.Steps.Count) return new(StepVerdict.Exit, $"track '{track}' has no step {step} in definition {definition.Version}");

        if (t.Steps[step].Condition is { } c)
        {
            if (c.Done is { } done && Activities.TryParse(done, out var d) && !lead.Activities.ContainsKey(d)) return new(StepVerdict.Skip, $"condition: {done} not done");
            if (c.NotDone is { } notDone && Activities.TryParse(notDone, out var nd) && lead.Activities.ContainsKey(nd)) return new(StepVerdict.Skip, $"condition: {notDone} already done");
            if (c.MinimumScore is { } min && Scoring.Score(lead, now, definition).Total < min) return new(StepVerdict.Skip, $"condition: score below {min}");
        }

        var window = IntoWindow(now, lead.Profile.TimeZone, rules.SendWindow);
        if (window > now) return new(StepVerdict.Defer, "outside the send window", window);

        var cap = rules.FrequencyCap;
        var since = now.AddDays(-cap.PerDays);
        var inPeriod = recentSends.Where(s => s > since && s <= now).Order().ToList();
        if (inPeriod.Count >= cap.MaxEmails)
        {
            // The cap frees a slot when the oldest send in the period leaves it.
            var retry = IntoWindow(inPeriod[inPeriod.Count - cap.MaxEmails].AddDays(cap.PerDays).AddSeconds(1), lead.Profile.TimeZone, rules.SendWindow);
            return new(StepVerdict.Defer, $"frequency cap: {inPeriod.Count} emails in {cap.PerDays} days", retry);
        }
        return new(StepVerdict.Send, "due");
    }

    /// <summary>The first instant at or after <paramref name="at"/> that lies inside the send window in the lead's local time.</summary>
    public static DateTimeOffset IntoWindow(DateTimeOffset at, string? timeZone, SendWindow window)
    {
        var zone = Zone(timeZone, window);
        var local = TimeZoneInfo.ConvertTime(at, zone);
        for (var day = 0; day < 8; day++)
        {
            var date = local.Date.AddDays(day);
            if (!window.Days.Contains(date.DayOfWeek)) continue;
            var start = date.AddHours(window.StartHour);
            var end = date.AddHours(window.EndHour);
            var candidate = day == 0 && local.DateTime > start ? local.DateTime : start;
            if (candidate < end) return ToInstant(candidate, zone);
        }
        throw new InvalidOperationException("The send window has no days; the definition check rejects that.");
    }

    private static DateTimeOffset ToInstant(DateTime local, TimeZoneInfo zone)
    {
        // A local time skipped by a daylight-saving change moves forward by the gap.
        while (zone.IsInvalidTime(local)) local = local.AddMinutes(30);
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    public static TimeZoneInfo Zone(string? timeZone, SendWindow window) =>
        timeZone is not null && TimeZoneInfo.TryFindSystemTimeZoneById(timeZone, out var zone)
            ? zone
            : TimeZoneInfo.FindSystemTimeZoneById(window.DefaultTimeZone);
}
