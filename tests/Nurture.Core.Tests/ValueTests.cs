namespace Nurture.Core.Tests;

public class When_marketing_asks_what_an_mql_is_worth
{
    private static ValueRules Rules(double weight = 10) => new() { PriorCloseRate = 0.2, PriorWeight = weight, PriorAverageRevenue = 500m, Currency = "EUR", SalesCycleDays = 30 };

    [Fact]
    public void Should_give_the_articles_example_20_percent_of_500_euro_is_100_euro()
    {
        // 50 MQLs of which 10 became customers, each worth 500 €: exactly the article's numbers, with the prior in agreement.
        var estimate = MqlValue.Estimate(new CohortCounts(null, 50, 10, 5000m), Rules());

        Assert.Equal(0.2, estimate.CloseRate);
        Assert.Equal(500m, estimate.AverageRevenue);
        Assert.Equal(100m, estimate.Value);
        Assert.True(estimate.ValueLow < 100m && estimate.ValueHigh > 100m);
    }

    [Fact]
    public void Should_rest_on_the_prior_while_there_is_no_data()
    {
        var estimate = MqlValue.Estimate(new CohortCounts("webinar", 0, 0, 0m), Rules());

        Assert.Equal(100m, estimate.Value);
        Assert.True(estimate.CloseRateHigh - estimate.CloseRateLow > 0.3, "little evidence, wide interval");
    }

    [Fact]
    public void Should_give_way_to_the_data_as_it_grows()
    {
        var few = MqlValue.Estimate(new CohortCounts(null, 10, 5, 5000m), Rules());
        var many = MqlValue.Estimate(new CohortCounts(null, 1000, 500, 500_000m), Rules());

        Assert.InRange(few.CloseRate, 0.3, 0.4);
        Assert.InRange(many.CloseRate, 0.49, 0.5);
        Assert.True(many.CloseRateHigh - many.CloseRateLow < few.CloseRateHigh - few.CloseRateLow);
    }

    [Theory]
    // Wilson 95 % for 10/50: 0.1124 to 0.3304 (standard tables).
    [InlineData(0.2, 50, 0.1124, 0.3304)]
    [InlineData(0.5, 100, 0.4038, 0.5962)]
    [InlineData(0.0, 20, 0.0, 0.1611)]
    public void Should_bound_the_close_rate_with_the_wilson_interval(double rate, double n, double low, double high)
    {
        var (l, h) = MqlValue.Wilson(rate, n);

        Assert.Equal(low, l, precision: 4);
        Assert.Equal(high, h, precision: 4);
    }

    [Fact]
    public void Should_count_only_mqls_older_than_the_sales_cycle()
    {
        var now = new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);

        Assert.True(MqlValue.InCohort(now.AddDays(-31), now, Rules()));
        Assert.False(MqlValue.InCohort(now.AddDays(-5), now, Rules()));
    }

    [Fact]
    public void Should_compute_cost_per_mql_cost_per_customer_and_return_on_spend()
    {
        var spend = MqlValue.Spend(1000m, 20, 4, 2000m);

        Assert.Equal(50m, spend.CostPerMql);
        Assert.Equal(250m, spend.CostPerCustomer);
        Assert.Equal(2.0, spend.ReturnOnSpend);
        Assert.Null(MqlValue.Spend(1000m, 0, 0, 0m).CostPerMql);
    }

    [Fact]
    public void Should_forecast_from_the_ad_spend_to_the_revenue()
    {
        var forecast = MqlValue.Project(new ForecastInput(Spend: 1000m, CostPerLead: 10m, Leads: null, LeadToMqlRate: 0.25, CloseRate: 0.2, AverageRevenue: 500m));

        Assert.Equal(100, forecast.Leads);
        Assert.Equal(25, forecast.Mqls);
        Assert.Equal(5, forecast.Customers);
        Assert.Equal(2500m, forecast.Revenue);
        Assert.Equal(2.5m, forecast.ReturnOnSpend);
        Assert.Contains(forecast.Assumptions, a => a.Contains("per lead", StringComparison.Ordinal));
    }

    [Theory]
    // The prior's revenue counts as PriorWeight × PriorCloseRate customers: 10 × 20 % = 2, 40 × 20 % = 8.
    [InlineData(10, 3666.67)] // (10,000 + 2 × 500) / (1 + 2)
    [InlineData(40, 1555.56)] // (10,000 + 8 × 500) / (1 + 8)
    public void Should_weigh_the_revenue_prior_by_the_prior_weight(double weight, double average)
    {
        var estimate = MqlValue.Estimate(new CohortCounts(null, 5, 1, 10_000m), Rules(weight));

        Assert.Equal((decimal)average, estimate.AverageRevenue);
    }

    [Fact]
    public void Should_pull_a_source_without_customers_toward_the_overall_estimate_not_the_configured_prior()
    {
        var (overall, bySource) = MqlValue.EstimateAll([new CohortCounts("google-ads", 50, 10, 93_000m), new CohortCounts("webinar", 10, 0, 0m)], Rules());
        var webinar = Assert.Single(bySource, v => v.Source == "webinar");

        // Overall: (10 + 0.2 × 10) / (60 + 10) = 0.1714; (93,000 + 2 × 500) / 12 = 7,833.33.
        Assert.Equal(0.1714, overall.CloseRate);
        Assert.Equal(7833.33m, overall.AverageRevenue);
        // Webinar: (0 + 0.1714… × 10) / (10 + 10) = 0.0857; (0 + 2 × 7,833.33) / 2 = 7,833.33; value 671.43, not 20 % × 500 € shrunk.
        Assert.Equal(0.0857, webinar.CloseRate);
        Assert.Equal(7833.33m, webinar.AverageRevenue);
        Assert.Equal(671.43m, webinar.Value);
    }

    [Fact]
    public void Should_widen_the_interval_by_the_spread_of_revenue()
    {
        // 10 customers of 500 € each: no spread, the interval is Wilson's × 500 €.
        var even = MqlValue.Estimate(new CohortCounts(null, 50, 10, 5000m, 10 * 500.0 * 500.0), Rules());
        // Five of 0 € and five of 1,000 €: the same 500 € on average.
        var uneven = MqlValue.Estimate(new CohortCounts(null, 50, 10, 5000m, 5 * 1000.0 * 1000.0), Rules());

        Assert.Equal(even.CloseRateLow * 500, (double)even.ValueLow, 0.05);
        Assert.Equal(even.CloseRateHigh * 500, (double)even.ValueHigh, 0.05);
        Assert.Equal(even.Value, uneven.Value);
        Assert.True(uneven.ValueLow < even.ValueLow && uneven.ValueHigh > even.ValueHigh, $"{uneven.ValueLow}–{uneven.ValueHigh} vs {even.ValueLow}–{even.ValueHigh}");
    }

    [Theory]
    [InlineData(-1000, 10.0, null, 0.25, "spend:")]
    [InlineData(1000, -10.0, null, 0.25, "costPerLead:")]
    [InlineData(1000, null, -5, 0.25, "leads:")]
    [InlineData(1000, 10.0, null, 1.5, "leadToMqlRate:")]
    public void Should_refuse_a_negative_forecast_input_naming_it(double spend, double? costPerLead, int? leads, double leadToMql, string field)
    {
        var e = Assert.Throws<ArgumentException>(() => MqlValue.Project(new ForecastInput((decimal)spend, (decimal?)costPerLead, leads, leadToMql, 0.2, 500m)));

        Assert.StartsWith(field, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_forecast_from_the_ad_budget_cost_per_click_and_click_to_lead_rate()
    {
        // The article's calculator starts from the ad: 1,000 € at 0.50 € a click is 2,000 clicks; 5 % become leads: 100.
        var forecast = MqlValue.Project(new ForecastInput(1000m, null, null, 0.25, 0.2, 500m) { CostPerClick = 0.5m, ClickToLeadRate = 0.05 });

        Assert.Equal(2000, forecast.Clicks);
        Assert.Equal(100, forecast.Leads);
        Assert.Equal(2500m, forecast.Revenue);
        Assert.Equal(100m, forecast.MqlValue);
    }

    [Fact]
    public void Should_recompute_the_worked_example_in_the_readme()
    {
        var readme = File.ReadAllLines(Path.Combine(Root(), "README.md"));
        var (all, bySource) = MqlValue.EstimateAll(
            [new CohortCounts("google-ads", 50, 10, 93_000m, 5 * 6300.0 * 6300.0 + 5 * 12300.0 * 12300.0), new CohortCounts("webinar", 10, 0, 0m)], Rules());
        var webinar = Assert.Single(bySource, v => v.Source == "webinar");
        static string Euro(decimal amount) => amount.ToString("#,0.00", System.Globalization.CultureInfo.InvariantCulture) + " €";

        var rows = new[] { ("| all |", all), ("| webinar |", webinar) };
        foreach (var (start, v) in rows)
        {
            var row = Assert.Single(readme, l => l.StartsWith(start, StringComparison.Ordinal));
            var cells = row.Split('|', StringSplitOptions.TrimEntries);
            Assert.EndsWith("= " + v.CloseRate.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture), cells[2], StringComparison.Ordinal);
            Assert.EndsWith("= " + Euro(v.AverageRevenue), cells[3], StringComparison.Ordinal);
            Assert.Equal(Euro(v.Value), cells[4]);
            Assert.Equal($"{Euro(v.ValueLow)} – {Euro(v.ValueHigh)}", cells[5]);
        }
        Assert.Contains(readme, l => l.Contains("*s* = 3,162.28 €", StringComparison.Ordinal));
    }

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Nurture.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Nurture.sln not found");
    }
}
