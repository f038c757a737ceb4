using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `forecast`: the article's calculator from the ad to the revenue. From spend and cost per lead (or a number of leads)
/// and the rates — given, or live from the database, or the definition's priors — the MQLs, customers and revenue to expect.
/// </summary>
public static class ForecastCommand
{
    public static Command Create()
    {
        var spend = new Option<decimal>("--spend") { Description = "What the campaign costs, e.g. 1000." };
        var costPerLead = new Option<decimal?>("--cost-per-lead") { Description = "What one lead costs, e.g. 10 (with --spend gives the number of leads)." };
        var leads = new Option<int?>("--leads") { Description = "The number of leads instead of --cost-per-lead." };
        var costPerClick = new Option<decimal?>("--cost-per-click") { Description = "What one click on the ad costs, e.g. 0.50; with --spend and --click-to-lead gives the leads (instead of --cost-per-lead)." };
        var clickToLead = new Option<double?>("--click-to-lead") { Description = "Share of clicks that become leads, 0–1, e.g. 0.05." };
        var leadToMql = new Option<double?>("--lead-to-mql") { Description = "Share of leads that become MQLs, 0–1; live from the database when not given." };
        var closeRate = new Option<double?>("--close-rate") { Description = "Share of MQLs that become customers, 0–1; live from the database when not given." };
        var revenue = new Option<decimal?>("--average-revenue") { Description = "Revenue per customer; live from the database when not given." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("forecast", "The article's calculator: spend → leads → MQLs → customers → revenue, with the assumptions shown.")
        {
            spend, costPerLead, leads, costPerClick, clickToLead, leadToMql, closeRate, revenue, json,
        };
        command.SetAction(async (parse, cancel) =>
        {
            foreach (var (option, value) in new (string, decimal?)[]
            {
                ("--spend", parse.GetValue(spend)), ("--cost-per-lead", parse.GetValue(costPerLead)), ("--leads", parse.GetValue(leads)),
                ("--cost-per-click", parse.GetValue(costPerClick)), ("--average-revenue", parse.GetValue(revenue)),
            })
            {
                if (value < 0) throw new ArgumentException($"{option}: {value} is negative; a forecast needs zero or more.");
            }
            if (parse.GetValue(clickToLead) is { } ctl) Rate(ctl, "--click-to-lead");
            var fromAd = parse.GetValue(costPerClick) is > 0 && parse.GetValue(clickToLead) is not null;
            if (parse.GetValue(leads) is null && parse.GetValue(costPerLead) is not > 0 && !fromAd)
            {
                throw new ArgumentException("forecast: give --leads N, or --spend S with --cost-per-lead C (e.g. `forecast --spend 1000 --cost-per-lead 10`), or --spend S with --cost-per-click C and --click-to-lead R.");
            }
            var configuration = Settings.Load();
            var definition = DefinitionSettings.Load(configuration);
            var (liveLeadToMql, liveClose, liveRevenue, source) = await LiveRatesAsync(configuration, definition, cancel);
            var input = new ForecastInput(parse.GetValue(spend), parse.GetValue(costPerLead), parse.GetValue(leads),
                Rate(parse.GetValue(leadToMql) ?? liveLeadToMql, "--lead-to-mql"), Rate(parse.GetValue(closeRate) ?? liveClose, "--close-rate"),
                parse.GetValue(revenue) ?? liveRevenue) { CostPerClick = parse.GetValue(costPerClick), ClickToLeadRate = parse.GetValue(clickToLead) };
            var forecast = MqlValue.Project(input);
            var notes = new List<string>(forecast.Assumptions);
            if (parse.GetValue(leadToMql) is null || parse.GetValue(closeRate) is null || parse.GetValue(revenue) is null) notes.Add($"rates not given are {source}");
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new { input, forecast = forecast with { Assumptions = notes } }, ReplayCommand.OutputOptions));
                return 0;
            }
            var c = CultureInfo.InvariantCulture;
            var currency = definition.Value.Currency;
            Console.Out.WriteLine(string.Create(c, $"""
                Forecast
                  clicks     {(forecast.Clicks is { } clicks ? clicks.ToString("0.#", c) : "–"),10}
                  leads      {forecast.Leads,10:0.#}
                  MQLs       {forecast.Mqls,10:0.#}
                  customers  {forecast.Customers,10:0.##}
                  revenue    {ReportCommand.Money(forecast.Revenue, currency),10}
                  return     {(forecast.ReturnOnSpend is { } r ? r.ToString("0.00x", c) : "–"),10}   (revenue per unit of spend)
                  one MQL is worth {ReportCommand.Money(forecast.MqlValue, currency)} (close rate × average revenue)
                Assumptions
                """));
            foreach (var note in notes) Console.Out.WriteLine("  - " + note);
            return 0;
        });
        return command;
    }

    private static double Rate(double value, string option) =>
        value is >= 0 and <= 1 ? value : throw new ArgumentException($"{option}: {value} is not a share between 0 and 1 (20 % is 0.2).");

    /// <summary>The live rates when the database has leads old enough to count; otherwise the definition's priors.</summary>
    private static async Task<(double LeadToMql, double Close, decimal Revenue, string Source)> LiveRatesAsync(
        Microsoft.Extensions.Configuration.IConfiguration configuration, Definition definition, CancellationToken cancel)
    {
        var priors = (0.3, definition.Value.PriorCloseRate, definition.Value.PriorAverageRevenue, $"the definition's priors (no leads in the database yet; lead→MQL assumed 30 %)");
        Database database;
        try
        {
            database = Settings.Database(configuration);
        }
        catch (SettingsException)
        {
            return priors;
        }
        if (database.Provider == DatabaseProvider.Sqlite && database.DataFolder is { } folder
            && !File.Exists(Path.Combine(folder, Path.GetFileName(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(database.ConnectionString).DataSource))))
        {
            return priors;
        }
        database.Migrate();
        var report = await FunnelReport.ReadAsync(new LeadStore(database), definition, DateTimeOffset.UtcNow, cancel);
        if (report.Funnel[0].Reached == 0) return priors;
        var leadToMql = report.Funnel[1].ConversionFromPrevious ?? 0;
        return (leadToMql, report.MqlValue.CloseRate, report.MqlValue.AverageRevenue,
            $"live from {database.Describe()}: lead→MQL {leadToMql.ToString("P1", CultureInfo.InvariantCulture)} of {report.Funnel[0].Reached} leads, close rate and revenue from {report.MqlValue.Mqls} MQLs (priors blended in while data is thin)");
    }
}
