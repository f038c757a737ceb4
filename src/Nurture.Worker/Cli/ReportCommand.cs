using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>`report`: the funnel, conversion, time in stage and MQL value, read from the database, as a table or JSON.</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of tables." };
        var command = new Command("report", "Funnel, conversion, time in stage and MQL value per source, read from the configured database.") { json };
        command.SetAction(async (parse, cancel) =>
        {
            var configuration = Settings.Load();
            var definition = DefinitionSettings.Load(configuration);
            var database = Settings.Database(configuration);
            var store = new LeadStore(database);
            database.Migrate();
            var report = await FunnelReport.ReadAsync(store, definition, DateTimeOffset.UtcNow, cancel);
            var times = await store.ReadTimeInStageAsync(cancel);
            var experiments = await ExperimentReport.ReadAsync(store, definition, report.AsOf, cancel);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new { report, timeInStage = times, experiments }, ReplayCommand.OutputOptions));
            }
            else
            {
                if (report.Funnel[0].Reached == 0)
                {
                    Console.Error.WriteLine($"No leads in {database.Describe()} yet. Feed some: `dotnet run --project src/Nurture.Worker -- ingest samples/events.ndjson`, or run `demo`.");
                }
                Console.Out.Write(Print(report, times));
                Console.Out.Write(Print(experiments, report.MqlValue.Currency));
            }
            return 0;
        });
        return command;
    }

    /// <summary>The report as plain-text tables, for the terminal.</summary>
    public static string Print(FunnelReport report, IReadOnlyList<TimeInStage> times)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"Funnel (definition {report.DefinitionVersion}, as of {report.AsOf:yyyy-MM-dd HH:mm} UTC)");
        text.AppendLine("  stage        reached  skipped    now   conversion   avg days in stage");
        foreach (var f in report.Funnel)
        {
            var time = times.FirstOrDefault(t => t.Stage == f.Stage);
            text.AppendLine(c, $"  {f.Stage,-10} {f.Reached,9} {(f.Stage == Contracts.LeadStage.Lead ? "" : f.Skipped.ToString(c)),8} {f.Now,6}   {(f.ConversionFromPrevious is { } r ? r.ToString("P1", c) : "–"),10}   {(time is null ? "–" : time.AverageDays.ToString("0.0", c)),17}");
        }
        foreach (var other in new[] { Contracts.LeadStage.Recycled, Contracts.LeadStage.Disqualified })
        {
            text.AppendLine(c, $"  {other,-12} {"",16} {report.LeadsPerStage.GetValueOrDefault(other),6}");
        }
        text.AppendLine("  reached: leads that entered the stage; skipped: leads that jumped over it (e.g. a deal won before sales saw them), counted apart, never as reached.");
        var v = report.MqlValue;
        text.AppendLine();
        text.AppendLine(c, $"MQL value: {Money(v.Value, v.Currency)} (95 %: {Money(v.ValueLow, v.Currency)} – {Money(v.ValueHigh, v.Currency)})");
        text.AppendLine(c, $"  = close rate {v.CloseRate.ToString("P1", c)} × average revenue {Money(v.AverageRevenue, v.Currency)}; {v.Customers} of {v.Mqls} MQLs older than the sales cycle became customers");
        if (report.MqlValueBySource.Count > 0)
        {
            text.AppendLine("  source               MQLs  customers       value    95 % interval          cost/MQL   return");
            foreach (var s in report.MqlValueBySource)
            {
                var spend = report.SpendByChannel.GetValueOrDefault(s.Source ?? "");
                text.AppendLine(c, $"  {s.Source,-20} {s.Mqls,5} {s.Customers,10} {Money(s.Value, s.Currency),11}    {Money(s.ValueLow, s.Currency) + " – " + Money(s.ValueHigh, s.Currency),-20} {(spend?.CostPerMql is { } cpm ? Money(cpm, s.Currency) : "–"),9} {(spend?.ReturnOnSpend is { } ros ? ros.ToString("0.0x", c) : "–"),8}");
            }
        }
        text.AppendLine();
        var e = report.Emails;
        text.AppendLine(c, $"Emails: {e.GetValueOrDefault("sent")} sent, {e.GetValueOrDefault("pending") + e.GetValueOrDefault("claimed")} scheduled, {e.GetValueOrDefault("failed")} failed, {e.GetValueOrDefault("cancelled")} cancelled; hand-off SLA breaches: {report.HandOffBreaches}");
        return text.ToString();
    }

    /// <summary>Each experiment: per variant its leads and outcomes with intervals, each variant against the control, and the verdict.</summary>
    public static string Print(ExperimentReport report, string currency)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        foreach (var e in report.Experiments)
        {
            text.AppendLine();
            text.AppendLine(c, $"Experiment {e.Name} (track {e.Track}, step {e.Step}; judged by {Core.Experiments.Describe(e.Judge)} within {e.WindowDays:0.#} days after the step; {(1 - e.Alpha).ToString("P0", c)} intervals valid however often you look)");
            text.AppendLine("  variant   leads  waiting   MQL rate                  customer rate             revenue/lead              clicked");
            foreach (var v in e.Variants)
            {
                text.AppendLine(c, $"  {v.Variant,-8} {v.Leads,6} {v.Waiting,8}   {Rate(v.MqlRate),-24}  {Rate(v.CustomerRate),-24}  {Amount(v.RevenuePerLead, currency),-24}  {v.ClickRate.ToString("P1", c)}");
            }
            foreach (var d in e.Differences)
            {
                text.AppendLine(c, $"  {d.Variant} − {d.Control}:{"",8}  {Points(d.MqlRate),-24}  {Points(d.CustomerRate),-24}  {Amount(d.RevenuePerLead, currency),-24}");
            }
            text.AppendLine(c, $"  {e.Verdict}");
            text.AppendLine("  clicks are shown, never the judge; a lead counts once its window is over.");
        }
        return text.ToString();

        static string Rate(Core.Estimate e) => string.Create(CultureInfo.InvariantCulture, $"{e.Value:P1} ({Bound(e.Low, "P1")} – {Bound(e.High, "P1")})");
        static string Points(Core.Estimate e) => string.Create(CultureInfo.InvariantCulture, $"{e.Value * 100:+0.0;-0.0;0.0} pp ({Signed(e.Low * 100)} – {Signed(e.High * 100)})");
        static string Amount(Core.Estimate e, string currency) => string.Create(CultureInfo.InvariantCulture, $"{e.Value:#,0.00} ({Bound(e.Low, "#,0.00")} – {Bound(e.High, "#,0.00")}) {(currency == "EUR" ? "€" : currency)}");
        static string Bound(double? x, string format) => x is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "?";
        static string Signed(double? x) => x is { } v ? v.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) : "?";
    }

    internal static string Money(decimal amount, string currency) =>
        string.Create(CultureInfo.InvariantCulture, $"{amount:#,0} {(currency == "EUR" ? "€" : currency)}");
}
