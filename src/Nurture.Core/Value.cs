using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>
/// The inputs for one source (or all): MQLs whose cohort is old enough, how many became customers, their revenue, and the
/// sum of each customer's revenue squared (for the spread of revenue; 0 when unknown).
/// </summary>
public sealed record CohortCounts(string? Source, int Mqls, int Customers, decimal Revenue, double RevenueSquares = 0)
{
    public static CohortCounts Sum(IEnumerable<CohortCounts> sources)
    {
        var list = sources.ToList();
        return new CohortCounts(null, list.Sum(c => c.Mqls), list.Sum(c => c.Customers), list.Sum(c => c.Revenue), list.Sum(c => c.RevenueSquares));
    }
}

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

/// <summary>
/// The calculator's inputs. Leads come from <see cref="Leads"/>, or spend ÷ <see cref="CostPerLead"/>, or the ad:
/// spend ÷ <see cref="CostPerClick"/> clicks × <see cref="ClickToLeadRate"/>.
/// </summary>
public sealed record ForecastInput(decimal Spend, decimal? CostPerLead, int? Leads, double LeadToMqlRate, double CloseRate, decimal AverageRevenue)
{
    public decimal? CostPerClick { get; init; }
    public double? ClickToLeadRate { get; init; }
}

public sealed record Forecast(double Leads, double Mqls, double Customers, decimal Revenue, decimal? ReturnOnSpend, IReadOnlyList<string> Assumptions)
{
    public double? Clicks { get; init; }
    /// <summary>What one MQL is worth at the forecast's rates: close rate × average revenue.</summary>
    public decimal MqlValue { get; init; }
}

/// <summary>
/// What an MQL is worth: close rate (MQL→customer) × average revenue per customer. The article's example:
/// 20 % × 500 € = 100 €. The configured priors carry the overall estimate while data is thin and give way as data
/// arrives; each source is pulled toward the overall estimate (partial pooling), so a source with few MQLs borrows from all.
/// </summary>
public static class MqlValue
{
    private const double Z = 1.959963984540054;

    /// <summary>MQLs younger than the sales cycle have not had their chance to close yet, so they stay out of the rate.</summary>
    public static bool InCohort(DateTimeOffset firstMqlAt, DateTimeOffset now, ValueRules rules) =>
        firstMqlAt <= now.AddDays(-rules.SalesCycleDays);

    /// <summary>The overall estimate (from the configured priors) and each source's, pooled toward the overall one.</summary>
    public static (ValueEstimate Overall, IReadOnlyList<ValueEstimate> BySource) EstimateAll(IEnumerable<CohortCounts> bySource, ValueRules rules)
    {
        var sources = bySource.ToList();
        var overall = CohortCounts.Sum(sources);
        var all = Estimate(overall, rules);
        var spread = Spread(overall, (double)all.AverageRevenue);
        var target = new Target(RateOf(overall, rules.PriorCloseRate, rules.PriorWeight), AverageOf(overall, rules.PriorAverageRevenue, RevenueWeight(rules)), spread);
        return (all, sources.Select(c => Estimate(c, rules, target)).OrderBy(v => v.Source, StringComparer.Ordinal).ToList());
    }

    /// <summary>One estimate with the configured priors as what it shrinks toward: the overall one, or any group on its own.</summary>
    public static ValueEstimate Estimate(CohortCounts counts, ValueRules rules) =>
        Estimate(counts, rules, new Target(rules.PriorCloseRate, rules.PriorAverageRevenue, null));

    private sealed record Target(double Rate, decimal AverageRevenue, double? Spread);

    /// <summary>
    /// rate = (customers + target rate × w) ÷ (MQLs + w), w = PriorWeight; average revenue = (revenue + target revenue × k) ÷
    /// (customers + k), k = w × PriorCloseRate (the prior's MQLs that would have closed). The interval: Wilson's for the
    /// rate over MQLs + w, widened in quadrature by the revenue's uncertainty, rate × 1.96 × spread ÷ √(customers + k).
    /// </summary>
    private static ValueEstimate Estimate(CohortCounts counts, ValueRules rules, Target target)
    {
        var w = rules.PriorWeight;
        var k = RevenueWeight(rules);
        var rate = RateOf(counts, target.Rate, w);
        var (low, high) = Wilson(rate, counts.Mqls + w);
        var average = AverageOf(counts, target.AverageRevenue, k);

        var a = (double)average;
        var value = rate * a;
        var spread = counts.Customers >= 2 ? Spread(counts, a) : target.Spread ?? a;
        var revenueMargin = counts.Customers + k > 0 ? rate * Z * spread / Math.Sqrt(counts.Customers + k) : 0;
        var valueLow = Math.Max(0, value - Math.Sqrt(Math.Pow(value - low * a, 2) + revenueMargin * revenueMargin));
        var valueHigh = value + Math.Sqrt(Math.Pow(high * a - value, 2) + revenueMargin * revenueMargin);

        return new ValueEstimate(
            counts.Source, counts.Mqls, counts.Customers,
            Round(rate), Round(low), Round(high),
            decimal.Round(average, 2),
            Money(value), Money(valueLow), Money(valueHigh),
            rules.Currency);
    }

    private static double RateOf(CohortCounts c, double target, double w) => c.Mqls + w == 0 ? target : (c.Customers + target * w) / (c.Mqls + w);

    private static decimal AverageOf(CohortCounts c, decimal target, double k) =>
        c.Customers + k == 0 ? target : (c.Revenue + target * (decimal)k) / (c.Customers + (decimal)k);

    /// <summary>The prior's revenue counts as the customers among the prior's MQLs: PriorWeight × PriorCloseRate (10 × 20 % = 2).</summary>
    public static double RevenueWeight(ValueRules rules) => rules.PriorWeight * rules.PriorCloseRate;

    /// <summary>The standard deviation of revenue per customer; with fewer than two customers (or no squares) it is taken as the average itself.</summary>
    private static double Spread(CohortCounts c, double average)
    {
        if (c.Customers < 2 || c.RevenueSquares <= 0) return average;
        var mean = (double)c.Revenue / c.Customers;
        return Math.Sqrt(Math.Max(0, (c.RevenueSquares - c.Customers * mean * mean) / (c.Customers - 1)));
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
        if (Problem(input) is { } problem) throw new ArgumentException(problem, nameof(input));
        var assumptions = new List<string>();
        double? clicks = null;
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
        else if (input.CostPerClick is > 0 and { } cpc && input.ClickToLeadRate is { } clickToLead)
        {
            clicks = (double)(input.Spend / cpc);
            leads = clicks.Value * clickToLead;
            assumptions.Add($"{input.Spend} spend / {cpc} per click = {clicks:0.#} clicks");
            assumptions.Add($"click→lead rate {clickToLead:P1} = {leads:0.#} leads");
        }
        else
        {
            throw new ArgumentException("Give a number of leads, a positive cost per lead, or a positive cost per click with a click→lead rate.", nameof(input));
        }
        var mqls = leads * input.LeadToMqlRate;
        var customers = mqls * input.CloseRate;
        var revenue = decimal.Round((decimal)customers * input.AverageRevenue, 2);
        assumptions.Add($"lead→MQL rate {input.LeadToMqlRate:P1}");
        assumptions.Add($"MQL→customer close rate {input.CloseRate:P1}");
        assumptions.Add($"average revenue per customer {input.AverageRevenue}");
        return new Forecast(Math.Round(leads, 1), Math.Round(mqls, 1), Math.Round(customers, 2), revenue,
            input.Spend > 0 ? decimal.Round(revenue / input.Spend, 2) : null, assumptions)
        {
            Clicks = clicks is { } c ? Math.Round(c, 1) : null,
            MqlValue = decimal.Round((decimal)input.CloseRate * input.AverageRevenue, 2),
        };
    }

    /// <summary>The first input a forecast cannot use, named as the record names it; none is negative, rates lie in 0–1.</summary>
    public static string? Problem(ForecastInput input) =>
        input.Spend < 0 ? $"spend: {input.Spend} is negative."
        : input.CostPerLead < 0 ? $"costPerLead: {input.CostPerLead} is negative."
        : input.Leads < 0 ? $"leads: {input.Leads} is negative."
        : input.CostPerClick < 0 ? $"costPerClick: {input.CostPerClick} is negative."
        : input.ClickToLeadRate is < 0 or > 1 ? $"clickToLeadRate: {input.ClickToLeadRate} is not a share between 0 and 1."
        : input.LeadToMqlRate is < 0 or > 1 or double.NaN ? $"leadToMqlRate: {input.LeadToMqlRate} is not a share between 0 and 1."
        : input.CloseRate is < 0 or > 1 or double.NaN ? $"closeRate: {input.CloseRate} is not a share between 0 and 1."
        : input.AverageRevenue < 0 ? $"averageRevenue: {input.AverageRevenue} is negative."
        : null;

    private static decimal Money(double amount) => decimal.Round((decimal)amount, 2);

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
