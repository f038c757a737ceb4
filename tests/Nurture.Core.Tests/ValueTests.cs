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
}
