using System.Diagnostics.Metrics;
using Nurture.Core;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Metrics;

/// <summary>Every experiment of the definition in force, judged on the sends and outcomes in the database.</summary>
public sealed record ExperimentReport(DateTimeOffset AsOf, string DefinitionVersion, string Method, IReadOnlyList<ExperimentResult> Experiments)
{
    public static async Task<ExperimentReport> ReadAsync(LeadStore store, Definition definition, DateTimeOffset now, CancellationToken cancel = default)
    {
        var results = new List<ExperimentResult>();
        foreach (var (track, step, experiment) in Core.Experiments.All(definition))
        {
            results.Add(Core.Experiments.Judge(track.Name, step, experiment, await store.ReadExposuresAsync(track.Name, step, cancel), now));
        }
        return new ExperimentReport(now, definition.Version, Core.Experiments.Method, results);
    }
}

/// <summary>
/// Gauges over the latest experiment report. Labels: experiment and variant (both from the definition, which the
/// check keeps to at most 10 variants each), outcome and bound — never a lead.
/// </summary>
internal static class ExperimentGauges
{
    public static void Register(Meter meter, Func<ExperimentReport?> latest)
    {
        meter.CreateObservableGauge("nurture.experiment.leads", () => Read(latest, r => r.Experiments.SelectMany(e => e.Variants.SelectMany(v => new[]
            {
                Measure(v.Leads, ("experiment", e.Name), ("variant", v.Variant), ("state", "judged")),
                Measure(v.Waiting, ("experiment", e.Name), ("variant", v.Variant), ("state", "waiting")),
            }))), "{lead}", "Leads sent an experiment's step, per variant: judged (window over) or waiting.");
        meter.CreateObservableGauge("nurture.experiment.rate", () => Read(latest, r => r.Experiments.SelectMany(e => e.Variants.SelectMany(v =>
                Bounds(v.MqlRate, ("experiment", e.Name), ("variant", v.Variant), ("outcome", "mql"))
                    .Concat(Bounds(v.CustomerRate, ("experiment", e.Name), ("variant", v.Variant), ("outcome", "customer")))
                    .Append(Measure(v.ClickRate, ("experiment", e.Name), ("variant", v.Variant), ("outcome", "click"), ("bound", "estimate")))))),
            null, "Per variant: MQL and customer rate within the window after the step, with the always-valid interval (bound low/high); click rate shown, never the judge.");
        meter.CreateObservableGauge("nurture.experiment.revenue_per_lead", () => Read(latest, r => r.Experiments.SelectMany(e => e.Variants.SelectMany(v =>
                Bounds(v.RevenuePerLead, ("experiment", e.Name), ("variant", v.Variant))))),
            null, "Per variant: revenue from deals won within the window after the step, per lead, with its interval.");
        meter.CreateObservableGauge("nurture.experiment.difference", () => Read(latest, r => r.Experiments.SelectMany(e => e.Differences.SelectMany(d =>
                Bounds(d.MqlRate, ("experiment", e.Name), ("variant", d.Variant), ("outcome", "mql"))
                    .Concat(Bounds(d.CustomerRate, ("experiment", e.Name), ("variant", d.Variant), ("outcome", "customer")))
                    .Concat(Bounds(d.RevenuePerLead, ("experiment", e.Name), ("variant", d.Variant), ("outcome", "revenue")))))),
            null, "Each variant minus the control, per outcome, with the always-valid interval: a winner only when it excludes zero.");
        meter.CreateObservableGauge("nurture.experiment.winner", () => Read(latest, r => r.Experiments.SelectMany(e => e.Variants.Select(v =>
                Measure(v.Variant == e.Winner ? 1 : 0, ("experiment", e.Name), ("variant", v.Variant))))),
            null, "1 for the variant the data names the winner, 0 for the others (all 0: no winner yet).");
    }

    private static IEnumerable<Measurement<double>> Bounds(Estimate e, params (string Key, string Value)[] tags)
    {
        yield return Measure(e.Value, [.. tags, ("bound", "estimate")]);
        if (e.Low is { } low) yield return Measure(low, [.. tags, ("bound", "low")]);
        if (e.High is { } high) yield return Measure(high, [.. tags, ("bound", "high")]);
    }

    private static List<Measurement<double>> Read(Func<ExperimentReport?> latest, Func<ExperimentReport, IEnumerable<Measurement<double>>> read) =>
        latest() is { } report ? read(report).ToList() : [];

    private static Measurement<double> Measure(double value, params (string Key, string Value)[] tags) =>
        new(value, tags.Select(t => new KeyValuePair<string, object?>(t.Key, t.Value)));
}
