using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>The inputs for one source (or all): MQLs whose cohort is old enough, how many became customers, their revenue.</summary>
public sealed record CohortCounts(string? Source, int Mqls, int Customers, decimal Revenue);

public sealed record ValueEstimate(
    string? Source,
    int Mqls,
    int Customers,
    double CloseRate,
    double CloseRateLow,
    double CloseRateHigh,
    decimal AverageRevenue,
    decimal Value,
    decimal ValueLow,
    decimal ValueHigh,
    string Currency);

public sealed record SpendReturn(decimal Spend, decimal? CostPerMql, decimal? CostPerCustomer, double? ReturnOnSpend);

public sealed record ForecastInput(decimal Spend, decimal? CostPerLead, int? Leads, double LeadToMqlRate, double CloseRate, decimal AverageRevenue);

public sealed record Forecast(double Leads, double Mqls, double Customers, decimal Revenue, decimal? ReturnOnSpend, IReadOnlyList<string> Assumptions);

/// <summary>
/// What an MQL is worth: close rate (MQL→customer) × average revenue per customer. The article's example:
/// 20 % × 500 € = 100 €. Configured priors carry the estimate while data is thin and give way as data arrives.
/// </summary>
public static class MqlValue
{
    /// <summary>MQLs younger than the sales cycle have not had their chance to close yet, so they stay out of the rate.</summary>
    public static bool InCohort(DateTimeOffset firstMqlAt, DateTimeOffset now, ValueRules rules) =>
        firstMqlAt <= now.AddDays(-rules.SalesCycleDays);

    public static ValueEstimate Estimate(CohortCounts counts, ValueRules rules)
    {
        var w = rules.PriorWeight;
        var n = counts.Mqls + w;
        var rate = n == 0 ? rules.PriorCloseRate : (counts.Customers + rules.PriorCloseRate * w) / n;
        var (low, high) = Wilson(rate, n);

        // The prior revenue counts as one customer's worth until real deals outweigh it.
        var priorCustomers = w > 0 ? 1m : 0m;
        var averageRevenue = counts.Customers + priorCustomers == 0
            ? rules.PriorAverageRevenue
            : (counts.Revenue + rules.PriorAverageRevenue * priorCustomers) / (counts.Customers + priorCustomers);

        return new ValueEstimate(
            counts.Source, counts.Mqls, counts.Customers,
            Round(rate), Round(low), Round(high),
            decimal.Round(averageRevenue, 2),
            Money(rate, averageRevenue), Money(low, averageRevenue), Money(high, averageRevenue),
            rules.Currency);
    }

    /// <summary>The Wilson score interval at 95 % for a rate observed over <paramref name="n"/> trials.</summary>
    public static (double Low, double High) Wilson(double rate, double n, double z = 1.959963984540054)
    {
        if (n <= 0) return (0, 1);
        var z2 = z * z;
        var centre = (rate + z2 / (2 * n)) / (1 + z2 / n);
        var margin = z * Math.Sqrt(rate * (1 - rate) / n + z2 / (4 * n * n)) / (1 + z2 / n);
        return (Math.Max(0, centre - margin), Math.Min(1, centre + margin));
    }

    public static SpendReturn Spend(decimal spend, int mqls, int customers, decimal revenue) => new(
        spend,
        mqls > 0 ? decimal.Round(spend / mqls, 2) : null,
        customers > 0 ? decimal.Round(spend / customers, 2) : null,
        spend > 0 ? Round((double)(revenue / spend)) : null);

    /// <summary>The article's calculator: spend → leads → MQLs → customers → revenue.</summary>
    public static Forecast Project(ForecastInput input)
    {
        var assumptions = new List<string>();
        double leads;
        if (input.Leads is { } given)
        {
            leads = given;
            assumptions.Add($"{given} leads (given)");
        }
        else if (input.CostPerLead is > 0 and { } cpl)
        {
            leads = (double)(input.Spend / cpl);
            assumptions.Add($"{input.Spend} spend / {cpl} per lead = {leads:0.#} leads");
        }
        else
        {
            throw new ArgumentException("Give either a number of leads or a positive cost per lead.", nameof(input));
        }
        var mqls = leads * input.LeadToMqlRate;
        var customers = mqls * input.CloseRate;
        var revenue = decimal.Round((decimal)customers * input.AverageRevenue, 2);
        assumptions.Add($"lead→MQL rate {input.LeadToMqlRate:P1}");
        assumptions.Add($"MQL→customer close rate {input.CloseRate:P1}");
        assumptions.Add($"average revenue per customer {input.AverageRevenue}");
        return new Forecast(Math.Round(leads, 1), Math.Round(mqls, 1), Math.Round(customers, 2), revenue,
            input.Spend > 0 ? decimal.Round(revenue / input.Spend, 2) : null, assumptions);
    }

    private static decimal Money(double rate, decimal averageRevenue) => decimal.Round((decimal)rate * averageRevenue, 2);

    private static double Round(double x) => Math.Round(x, 4);
}

/// <summary>
/// Funnel counts: how many leads entered each stage, how many jumped over it (a deal won by a lead that was never an
/// MQL skips MQL, SAL and SQL), how many are in it now, and the conversion from the stage before.
/// </summary>
public sealed record FunnelStage(LeadStage Stage, int Reached, int Skipped, int Now, double? ConversionFromPrevious);

public static class Funnel
{
    public static readonly LeadStage[] Stages = [LeadStage.Lead, LeadStage.Mql, LeadStage.Sal, LeadStage.Sql, LeadStage.Customer];

    /// <summary>
    /// Builds the funnel from how many leads entered each stage (every lead entered Lead) and how many jumped over it without
    /// ever entering it. A skipped stage is never counted as reached: the data says the lead was not there. The conversion
    /// is reached ÷ reached by the stage before, so with skips it can exceed 100 %.
    /// </summary>
    public static IReadOnlyList<FunnelStage> From(IReadOnlyDictionary<LeadStage, int> reached, IReadOnlyDictionary<LeadStage, int> skipped, IReadOnlyDictionary<LeadStage, int> now)
    {
        var result = new List<FunnelStage>();
        int? previous = null;
        foreach (var stage in Stages)
        {
            var r = reached.GetValueOrDefault(stage);
            result.Add(new FunnelStage(stage, r, skipped.GetValueOrDefault(stage), now.GetValueOrDefault(stage), previous is > 0 ? Math.Round((double)r / previous.Value, 4) : null));
            previous = r;
        }
        return result;
    }

    /// <summary>The funnel of leads whose transitions are known: a stage is reached when a transition entered it.</summary>
    public static IReadOnlyList<FunnelStage> From(IReadOnlyCollection<(Lead Lead, IReadOnlyList<StageTransition> Transitions)> leads)
    {
        var reached = Stages.ToDictionary(s => s, s => s == LeadStage.Lead ? leads.Count : leads.Count(l => l.Transitions.Any(t => t.To == s)));
        var skipped = Stages.ToDictionary(s => s, s => leads.Count(l => l.Transitions.Any(t => t.Skipped.Contains(s)) && !l.Transitions.Any(t => t.To == s)));
        var now = Enum.GetValues<LeadStage>().ToDictionary(s => s, s => leads.Count(l => l.Lead.Stage == s));
        return From(reached, skipped, now);
    }
}
