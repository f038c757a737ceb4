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
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new { report, timeInStage = times }, ReplayCommand.OutputOptions));
            }
            else
            {
                if (report.Funnel[0].Reached == 0)
                {
                    Console.Error.WriteLine($"No leads in {database.Describe()} yet. Feed some: `dotnet run --project src/Nurture.Worker -- ingest samples/events.ndjson`, or run `demo`.");
                }
                Console.Out.Write(Print(report, times));
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

    internal static string Money(decimal amount, string currency) =>
        string.Create(CultureInfo.InvariantCulture, $"{amount:#,0} {(currency == "EUR" ? "€" : currency)}");
}
