using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Nurture.Core;

/// <summary>A step as one lead gets it: the variant's template, subject, delay and links, or the step's own.</summary>
public sealed record StepForLead(string Template, double DelayDays, IReadOnlyList<StepLink> Links, string? Subject, IReadOnlyDictionary<string, string> Subjects, string? Experiment, StepVariant? Variant)
{
    /// <summary>The subject line in the email's language, or null: the template's own.</summary>
    public string? SubjectIn(string language) =>
        Subjects.TryGetValue(language, out var s) && !string.IsNullOrWhiteSpace(s) ? s : string.IsNullOrWhiteSpace(Subject) ? null : Subject;
}

/// <summary>
/// A lead that got an experiment's step: when it went out, the lead's later MQL transitions and won deals, and whether a
/// person clicked the step's links. Where the numbers come from (the database, a replay) is the caller's business.
/// </summary>
public sealed record Exposure(string LeadId, DateTimeOffset At, IReadOnlyList<DateTimeOffset> MqlAt, IReadOnlyList<(DateTimeOffset At, decimal Revenue)> Deals, bool Clicked = false);

/// <summary>An estimate with its always-valid interval (confidence sequence); a bound is null while the data cannot set it.</summary>
public sealed record Estimate(double Value, double? Low, double? High)
{
    public bool ExcludesZero => Low > 0 || High < 0;
}

public sealed record VariantResult(
    string Variant, double Weight, int Leads, int Waiting, int Mqls, int Customers, decimal Revenue, int Clicked,
    Estimate MqlRate, Estimate CustomerRate, Estimate RevenuePerLead, double ClickRate);

/// <summary>One variant against the control, on each outcome; <see cref="Judged"/> names the one that decides.</summary>
public sealed record VariantDifference(string Variant, string Control, ExperimentOutcome Judged, Estimate MqlRate, Estimate CustomerRate, Estimate RevenuePerLead)
{
    public Estimate Of(ExperimentOutcome outcome) => outcome switch
    {
        ExperimentOutcome.Mql => MqlRate,
        ExperimentOutcome.Customer => CustomerRate,
        _ => RevenuePerLead,
    };
}

public sealed record ExperimentResult(
    string Name, string Track, int Step, ExperimentOutcome Judge, double WindowDays, double Alpha, DateTimeOffset AsOf,
    IReadOnlyList<VariantResult> Variants, IReadOnlyList<VariantDifference> Differences, string? Winner, string Verdict);

/// <summary>
/// Experiments on nurture steps: who gets which variant, and what the outcomes say. A winner is named only when the
/// always-valid interval of its difference to the control (a confidence sequence, valid however often it is read)
/// excludes zero, on the outcome the experiment is judged by; until then the verdict is "no winner yet".
/// </summary>
public static class Experiments
{
    public const string Method = "asymptotic confidence sequence (normal mixture; Howard et al. 2021, Waudby-Smith et al. 2024), valid under continuous monitoring";

    /// <summary>Every experiment of the definition with its track and step.</summary>
    public static IEnumerable<(NurtureTrack Track, int Step, StepExperiment Experiment)> All(Definition definition) =>
        definition.Nurture.Tracks.SelectMany(t => t.Steps.Select((s, i) => (Track: t, Step: i, s.Experiment)))
            .Where(x => x.Experiment is not null).Select(x => (x.Track, x.Step, x.Experiment!));

    /// <summary>
    /// The lead's variant: the first 8 bytes of SHA-256("{experiment}\n{lead}") as a number in [0, 1), placed on the
    /// variants' cumulative weights. The same on every machine and run (never string.GetHashCode, which is per process).
    /// </summary>
    public static StepVariant Assign(StepExperiment experiment, string leadId)
    {
        var u = Unit(experiment.Name, leadId);
        var total = experiment.Variants.Sum(v => v.Weight);
        var at = 0.0;
        foreach (var variant in experiment.Variants)
        {
            at += variant.Weight / total;
            if (u < at) return variant;
        }
        return experiment.Variants[^1];
    }

    /// <summary>A number in [0, 1) from the experiment's name and the lead's id.</summary>
    public static double Unit(string experiment, string leadId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{experiment}\n{leadId}"), hash);
        return (BinaryPrimitives.ReadUInt64BigEndian(hash) >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>The step as this lead gets it.</summary>
    public static StepForLead For(TrackStep step, string leadId)
    {
        if (step.Experiment is not { Variants.Count: > 0 } experiment) return new(step.Template, step.DelayDays, step.Links, step.Subject, step.Subjects, null, null);
        var v = Assign(experiment, leadId);
        var ownSubject = !string.IsNullOrWhiteSpace(v.Subject) || v.Subjects.Count > 0;
        return new(string.IsNullOrWhiteSpace(v.Template) ? step.Template : v.Template, v.DelayDays ?? step.DelayDays,
            v.Links is { Count: > 0 } links ? links : step.Links, ownSubject ? v.Subject : step.Subject, ownSubject ? v.Subjects : step.Subjects, experiment.Name, v);
    }

    /// <summary>
    /// Judges an experiment at <paramref name="now"/>. Only leads whose window is over count (their outcome is final);
    /// the others are shown as waiting. Each variant is compared with the first (the control) at Alpha ÷ (variants − 1).
    /// </summary>
    public static ExperimentResult Judge(string track, int step, StepExperiment experiment, IEnumerable<Exposure> exposures, DateTimeOffset now)
    {
        var window = TimeSpan.FromDays(experiment.WindowDays);
        var byVariant = experiment.Variants.ToDictionary(v => v.Name, _ => new VariantCounts(), StringComparer.Ordinal);
        foreach (var e in exposures)
        {
            var arm = byVariant[Assign(experiment, e.LeadId).Name];
            if (e.At + window > now)
            {
                arm.Wait();
                continue;
            }
            var end = e.At + window;
            arm.Add(e.MqlAt.Any(t => t >= e.At && t <= end),
                e.Deals.Where(d => d.At >= e.At && d.At <= end).ToList() is var deals && deals.Count > 0,
                deals.Sum(d => d.Revenue), e.Clicked);
        }

        return Judge(track, step, experiment, byVariant, now);
    }

    /// <summary>Judges an experiment from each variant's counts (keyed by variant name), as <see cref="Judge(string, int, StepExperiment, IEnumerable{Exposure}, DateTimeOffset)"/> does.</summary>
    public static ExperimentResult Judge(string track, int step, StepExperiment experiment, IReadOnlyDictionary<string, VariantCounts> byVariant, DateTimeOffset now)
    {
        var alpha = experiment.Alpha;
        var planned = Math.Max(1, experiment.PlannedLeads);
        var control = experiment.Variants[0];
        var c = byVariant[control.Name];
        var variants = experiment.Variants.Select(v =>
        {
            var a = byVariant[v.Name];
            return new VariantResult(v.Name, v.Weight, a.N, a.Waiting, a.Mqls, a.Customers, decimal.Round(a.Revenue, 2), a.Clicks,
                Rate(a.Mqls, a.N, planned, alpha), Rate(a.Customers, a.N, planned, alpha), Mean(a, planned, alpha),
                a.N == 0 ? 0 : Math.Round((double)a.Clicks / a.N, 4));
        }).ToList();
        var each = alpha / Math.Max(1, experiment.Variants.Count - 1);
        var differences = experiment.Variants.Skip(1).Select(v =>
        {
            var a = byVariant[v.Name];
            return new VariantDifference(v.Name, control.Name, experiment.Judge,
                RateDifference(a.Mqls, a.N, c.Mqls, c.N, planned, each), RateDifference(a.Customers, a.N, c.Customers, c.N, planned, each),
                MeanDifference(a, c, planned, each));
        }).ToList();

        var (winner, verdict) = Decide(experiment, control.Name, differences);
        return new ExperimentResult(experiment.Name, track, step, experiment.Judge, experiment.WindowDays, alpha, now, variants, differences, winner, verdict);
    }

    private static (string? Winner, string Verdict) Decide(StepExperiment experiment, string control, List<VariantDifference> differences)
    {
        var c = CultureInfo.InvariantCulture;
        var what = Describe(experiment.Judge);
        string Show(VariantDifference d) => $"{d.Variant} − {d.Control}: {Format(experiment.Judge, d.Of(experiment.Judge).Value, signed: true)} " +
            $"({(1 - experiment.Alpha).ToString("P0", c)}: {Format(experiment.Judge, d.Of(experiment.Judge).Low, signed: true)} to {Format(experiment.Judge, d.Of(experiment.Judge).High, signed: true)})";
        var better = differences.Where(d => d.Of(experiment.Judge).Low > 0).OrderByDescending(d => d.Of(experiment.Judge).Value).ToList();
        if (better.Count > 0) return (better[0].Variant, $"{better[0].Variant} wins on {what}: {Show(better[0])} excludes zero");
        if (differences.Count > 0 && differences.All(d => d.Of(experiment.Judge).High < 0))
        {
            return (control, $"{control} wins on {what}: every other variant is worse ({string.Join("; ", differences.Select(Show))})");
        }
        return (null, differences.Count == 0 ? "no winner yet" : $"no winner yet: {string.Join("; ", differences.Select(Show))} includes zero");
    }

    public static string Describe(ExperimentOutcome outcome) => outcome switch
    {
        ExperimentOutcome.Mql => "MQL rate",
        ExperimentOutcome.Customer => "customer rate",
        _ => "revenue per lead",
    };

    private static string Format(ExperimentOutcome outcome, double? bound, bool signed)
    {
        if (bound is not { } value) return "?";
        var c = CultureInfo.InvariantCulture;
        var sign = signed && value > 0 ? "+" : "";
        return outcome == ExperimentOutcome.Revenue ? sign + value.ToString("#,0.00", c) : sign + (value * 100).ToString("0.0", c) + " pp";
    }

    /// <summary>
    /// The half-width of the asymptotic confidence sequence for an estimate with variance <paramref name="variance"/>
    /// after <paramref name="n"/> observations: √(V · (1 + 1/x) · ln((1 + x) / α²)), x = n·ρ², with ρ² = (−2 ln α + ln(1 − 2 ln α)) / planned,
    /// the mixture that makes it tightest at <paramref name="planned"/> observations. Valid at every n at once.
    /// </summary>
    public static double HalfWidth(double variance, int n, int planned, double alpha)
    {
        if (n <= 0) return double.PositiveInfinity;
        var l = -2 * Math.Log(alpha);
        var x = n * (l + Math.Log(1 + l)) / planned;
        return Math.Sqrt(variance * (1 + 1 / x) * Math.Log((1 + x) / (alpha * alpha)));
    }

    /// <summary>A rate's variance with half a success and half a failure added, so 0 of 20 is not taken as certain.</summary>
    private static double RateVariance(int k, int n)
    {
        var p = (k + 0.5) / (n + 1.0);
        return p * (1 - p) / Math.Max(1, n);
    }

    private static Estimate Rate(int k, int n, int planned, double alpha)
    {
        if (n == 0) return new(0, null, null);
        var p = (double)k / n;
        var h = HalfWidth(RateVariance(k, n), n, planned, alpha);
        return new(Round(p), Round(Math.Max(0, p - h)), Round(Math.Min(1, p + h)));
    }

    private static Estimate RateDifference(int k, int n, int kc, int nc, int planned, double alpha)
    {
        if (n == 0 || nc == 0) return new(0, null, null);
        var d = (double)k / n - (double)kc / nc;
        var h = HalfWidth(RateVariance(k, n) + RateVariance(kc, nc), n + nc, planned, alpha);
        return new(Round(d), Round(Math.Max(-1, d - h)), Round(Math.Min(1, d + h)));
    }

    private static Estimate Mean(VariantCounts a, int planned, double alpha)
    {
        if (a.N == 0) return new(0, null, null);
        var h = HalfWidth(a.MeanVariance, a.N, planned, alpha);
        return new(Money(a.Mean), Money(Math.Max(0, a.Mean - h)), Money(a.Mean + h));
    }

    private static Estimate MeanDifference(VariantCounts a, VariantCounts c, int planned, double alpha)
    {
        // Revenue's spread is read from the data: with fewer than two leads in an arm, or none at all, it says nothing yet.
        var variance = a.MeanVariance + c.MeanVariance;
        var d = a.Mean - c.Mean;
        if (a.N < 2 || c.N < 2 || variance <= 0 && d != 0) return new(Money(d), null, null);
        var h = HalfWidth(variance, a.N + c.N, planned, alpha);
        return new(Money(d), Money(d - h), Money(d + h));
    }

    private static double Round(double x) => Math.Round(x, 4);

    private static double Money(double x) => Math.Round(x, 2);

    /// <summary>
    /// The winner kept: a copy of <paramref name="definition"/> where the experiment's step takes the kept variant's
    /// template, subject line, delay and links, the experiment is gone, and the version is <paramref name="version"/>.
    /// </summary>
    public static Definition Keep(Definition definition, string experiment, string keep, string version)
    {
        var copy = Copy(definition);
        var found = All(copy).FirstOrDefault(x => string.Equals(x.Experiment.Name, experiment, StringComparison.Ordinal));
        if (found.Experiment is null)
        {
            throw new ArgumentException($"experiment: no experiment '{experiment}' in definition {definition.Version} (there are: {string.Join(", ", All(definition).Select(x => x.Experiment.Name).DefaultIfEmpty("none"))}).", nameof(experiment));
        }
        var variant = found.Experiment.Variants.FirstOrDefault(v => string.Equals(v.Name, keep, StringComparison.Ordinal))
            ?? throw new ArgumentException($"keep: experiment '{experiment}' has no variant '{keep}' (it has {string.Join(", ", found.Experiment.Variants.Select(v => v.Name))}).", nameof(keep));
        var step = found.Track.Steps[found.Step];
        if (!string.IsNullOrWhiteSpace(variant.Template)) step.Template = variant.Template;
        if (variant.DelayDays is { } delay) step.DelayDays = delay;
        if (variant.Links is { Count: > 0 } links) step.Links = links;
        if (!string.IsNullOrWhiteSpace(variant.Subject) || variant.Subjects.Count > 0) (step.Subject, step.Subjects) = (variant.Subject, variant.Subjects);
        step.Experiment = null;
        copy.Version = version;
        return copy;
    }

    /// <summary>The next version: a last part that is a number counts up ("2026-11.2" → "2026-11.3"); otherwise ".1" is added.</summary>
    public static string NextVersion(string version)
    {
        var dot = version.LastIndexOf('.');
        return dot >= 0 && int.TryParse(version.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? string.Create(CultureInfo.InvariantCulture, $"{version[..dot]}.{n + 1}")
            : version + ".1";
    }

    private static Definition Copy(Definition d) =>
        System.Text.Json.JsonSerializer.Deserialize<Definition>(System.Text.Json.JsonSerializer.Serialize(d, CopyJson), CopyJson)!;

    private static readonly System.Text.Json.JsonSerializerOptions CopyJson = new()
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };
}

/// <summary>Running sums of one variant's leads whose window is over (and how many still wait for theirs).</summary>
public sealed class VariantCounts
{
    private double _sum;
    private double _squares;

    public int N { get; private set; }
    public int Waiting { get; private set; }
    public int Mqls { get; private set; }
    public int Customers { get; private set; }
    public int Clicks { get; private set; }
    public decimal Revenue { get; private set; }

    /// <summary>A lead whose window is not over yet: shown, not judged.</summary>
    public void Wait() => Waiting++;

    /// <summary>A lead whose window is over, with its outcomes in the window.</summary>
    public void Add(bool mql, bool customer, decimal revenue, bool clicked)
    {
        N++;
        if (mql) Mqls++;
        if (customer) Customers++;
        if (clicked) Clicks++;
        Revenue += revenue;
        var r = (double)revenue;
        _sum += r;
        _squares += r * r;
    }

    public double Mean => N == 0 ? 0 : _sum / N;

    /// <summary>The variance of the mean: the sample variance (over N − 1) ÷ N; 0 with fewer than two leads.</summary>
    public double MeanVariance => N < 2 ? 0 : Math.Max(0, (_squares - N * Mean * Mean) / (N - 1)) / N;
}
