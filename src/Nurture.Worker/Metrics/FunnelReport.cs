using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Metrics;

/// <summary>The funnel, conversion, MQL value per source with its interval, spend returns, emails and SLA breaches, read from the database.</summary>
public sealed record FunnelReport(
    DateTimeOffset AsOf,
    string DefinitionVersion,
    IReadOnlyList<FunnelStage> Funnel,
    IReadOnlyDictionary<LeadStage, int> LeadsPerStage,
    ValueEstimate MqlValue,
    IReadOnlyList<ValueEstimate> MqlValueBySource,
    IReadOnlyDictionary<string, SpendReturn> SpendByChannel,
    IReadOnlyDictionary<string, int> Emails,
    int HandOffBreaches,
    IReadOnlyList<DayCount> Timeline)
{
    /// <summary>Every figure from one snapshot of the database (<see cref="LeadStore.ReadFunnelFiguresAsync"/>), so they agree with each other.</summary>
    public static async Task<FunnelReport> ReadAsync(LeadStore store, Definition definition, DateTimeOffset now, CancellationToken cancel = default)
    {
        var figures = await store.ReadFunnelFiguresAsync(now.AddDays(-definition.Value.SalesCycleDays), now.AddDays(-30), cancel);
        var (overall, bySource) = Core.MqlValue.EstimateAll(figures.Cohorts.OldEnough, definition.Value);
        // Spend is set against every MQL and customer a source ever brought, not only the cohort old enough for the close rate.
        var allTime = figures.Cohorts.Ever.ToDictionary(c => c.Source ?? "", StringComparer.Ordinal);
        var spend = figures.Spend.ToDictionary(
            s => s.Key,
            s => allTime.TryGetValue(s.Key, out var c) ? Core.MqlValue.Spend(s.Value, c.Mqls, c.Customers, c.Revenue) : Core.MqlValue.Spend(s.Value, 0, 0, 0m),
            StringComparer.Ordinal);
        return new FunnelReport(
            now,
            definition.Version,
            figures.Funnel,
            figures.LeadsPerStage,
            overall,
            bySource,
            spend,
            figures.Emails,
            figures.HandOffBreaches,
            figures.Timeline);
    }
}

/// <summary>
/// Reads the funnel every Nurture:Metrics:RefreshSeconds for the gauges, so a scrape never waits on the database. A long
/// history makes a read expensive (seconds of the database's time at a million transitions): the wait after a read is
/// then stretched to nine times its length, so the gauges never take more than a tenth of the database's time.
/// </summary>
public sealed partial class FunnelRefresher(LeadStore store, Definition definition, TimeProvider clock, NurtureMetrics metrics, MetricsSettings settings, ILogger<FunnelRefresher> log) : BackgroundService
{
    /// <summary>The wait after a read per second the read took.</summary>
    internal const int WaitPerReadSecond = 9;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var configured = TimeSpan.FromSeconds(settings.RefreshSeconds);
        var stretched = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            // The read's real duration, not the injected clock's: a test's clock moved during a read would stretch the wait by days.
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            TimeSpan? took = null;
            try
            {
                var now = clock.GetUtcNow();
                var funnel = await FunnelReport.ReadAsync(store, definition, now, stoppingToken);
                // The experiments first: a scrape that sees this funnel sees these experiments too.
                metrics.LatestExperiments = await ExperimentReport.ReadAsync(store, definition, now, stoppingToken);
                metrics.Latest = funnel;
                took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // A read that timed out (a command the database gave up on, or a host that does not answer) stretches the
                // wait like a slow read. Any other failure (a refused connection: the database stopped) is tried again
                // after RefreshSeconds, however long it took.
                if (TimedOut(e)) took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                LogReadFailed(log, e, settings.RefreshSeconds);
            }
            var wait = configured;
            if (took is { } read)
            {
                wait = WaitAfter(read, configured);
                if (wait > configured != stretched)
                {
                    stretched = wait > configured;
                    if (stretched) LogStretched(log, read.TotalSeconds, wait.TotalSeconds, settings.RefreshSeconds);
                    else LogBackToConfigured(log, settings.RefreshSeconds);
                }
            }
            try
            {
                await Task.Delay(wait, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>A command timeout: Npgsql's (a TimeoutException inside), PostgreSQL's statement_timeout (57014), SQL Server's (-2).</summary>
    internal static bool TimedOut(Exception e) =>
        e is TimeoutException or Npgsql.PostgresException { SqlState: "57014" } or Microsoft.Data.SqlClient.SqlException { Number: -2 }
        || e.InnerException is { } inner && TimedOut(inner);

    /// <summary>Nurture:Metrics:RefreshSeconds, or nine times the last read when that is longer.</summary>
    internal static TimeSpan WaitAfter(TimeSpan took, TimeSpan configured) =>
        took * WaitPerReadSecond > configured ? took * WaitPerReadSecond : configured;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading the funnel for the metrics failed; trying again in {Seconds} s or, after a timeout, nine times as long as it took")]
    private static partial void LogReadFailed(ILogger logger, Exception e, int seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Reading the funnel for the metrics took {Took:F1} s; the gauges are read every {Wait:F0} s instead of every {Configured} s (Nurture:Metrics:RefreshSeconds) so that they take at most a tenth of the database's time")]
    private static partial void LogStretched(ILogger logger, double took, double wait, int configured);

    [LoggerMessage(Level = LogLevel.Information, Message = "The gauges are read every {Configured} s again (Nurture:Metrics:RefreshSeconds)")]
    private static partial void LogBackToConfigured(ILogger logger, int configured);
}

/// <summary>Gauges over the latest funnel report. Labels: stage, source, bound — never a lead.</summary>
internal static class FunnelGauges
{
    public static void Register(Meter meter, Func<FunnelReport?> latest, TimeProvider clock)
    {
        // How old the gauges are: RefreshSeconds at most on a small database, longer when a long read stretched the wait
        // or the database is away. Nothing before the first read.
        meter.CreateObservableGauge("nurture.funnel.age", () => Read(latest, r => [new Measurement<double>((clock.GetUtcNow() - r.AsOf).TotalSeconds)]),
            "s", "Seconds since the funnel gauges were read from the database.");
        meter.CreateObservableGauge("nurture.leads", () => Read(latest, r => r.LeadsPerStage.Select(p => Measure(p.Value, ("stage", p.Key.ToString())))),
            "{lead}", "Leads in each stage now.");
        meter.CreateObservableGauge("nurture.funnel.reached", () => Read(latest, r => r.Funnel.Select(f => Measure(f.Reached, ("stage", f.Stage.ToString())))),
            "{lead}", "Leads that entered each funnel stage (a stage a lead jumped over does not count).");
        meter.CreateObservableGauge("nurture.conversion.ratio", () => Read(latest, r => r.Funnel.Zip(r.Funnel.Skip(1))
            .Where(p => p.Second.ConversionFromPrevious is not null)
            .Select(p => new Measurement<double>(p.Second.ConversionFromPrevious!.Value, new("from", p.First.Stage.ToString()), new("to", p.Second.Stage.ToString())))),
            "1", "Share of leads that reached a stage and went on to reach the next.");
        meter.CreateObservableGauge("nurture.mql.value", () => Read(latest, r => Values(r).SelectMany(v => new[]
            {
                Measure((double)v.Value, ("source", v.Source ?? "all"), ("bound", "estimate"), ("currency", v.Currency)),
                Measure((double)v.ValueLow, ("source", v.Source ?? "all"), ("bound", "low"), ("currency", v.Currency)),
                Measure((double)v.ValueHigh, ("source", v.Source ?? "all"), ("bound", "high"), ("currency", v.Currency)),
            })), null, "What one MQL is worth: close rate × average revenue, with its 95 % interval (bound low/high).");
        meter.CreateObservableGauge("nurture.mql.close_rate", () => Read(latest, r => Values(r).SelectMany(v => new[]
            {
                Measure(v.CloseRate, ("source", v.Source ?? "all"), ("bound", "estimate")),
                Measure(v.CloseRateLow, ("source", v.Source ?? "all"), ("bound", "low")),
                Measure(v.CloseRateHigh, ("source", v.Source ?? "all"), ("bound", "high")),
            })), "1", "Close rate MQL → customer of the cohort old enough to have closed.");
        meter.CreateObservableGauge("nurture.mql.cost", () => Read(latest, r => r.SpendByChannel.Where(s => s.Value.CostPerMql is not null)
            .Select(s => Measure((double)s.Value.CostPerMql!.Value, ("source", s.Key)))), null, "Spend per MQL, per source where spend is known.");
        meter.CreateObservableGauge("nurture.spend.return.ratio", () => Read(latest, r => r.SpendByChannel.Where(s => s.Value.ReturnOnSpend is not null)
            .Select(s => Measure(s.Value.ReturnOnSpend!.Value, ("source", s.Key)))), "1", "Revenue from a source's customers per unit of its spend.");
    }

    private static IEnumerable<ValueEstimate> Values(FunnelReport r) => r.MqlValueBySource.Prepend(r.MqlValue);

    private static List<Measurement<double>> Read(Func<FunnelReport?> latest, Func<FunnelReport, IEnumerable<Measurement<double>>> read) =>
        latest() is { } report ? read(report).ToList() : [];

    private static Measurement<double> Measure(double value, params (string Key, string Value)[] tags) =>
        new(value, tags.Select(t => new KeyValuePair<string, object?>(t.Key, t.Value)));
}
