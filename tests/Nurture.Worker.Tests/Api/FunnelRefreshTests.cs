using Nurture.Worker.Metrics;

namespace Nurture.Worker.Tests.Api;

public class When_the_gauges_read_the_funnel_from_a_long_history
{
    [Theory]
    [InlineData(0.2, 15, 15)] // a small database: every RefreshSeconds
    [InlineData(1.5, 15, 15)] // 1.5 s read + 13.5 s wait would be a tenth: still every RefreshSeconds
    [InlineData(3.0, 15, 27)] // a million transitions: nine times the read, so a tenth of the database's time
    [InlineData(3.0, 60, 60)]
    public void Should_wait_the_configured_interval_or_nine_times_the_last_read(double readSeconds, int refreshSeconds, double waitSeconds)
    {
        var wait = FunnelRefresher.WaitAfter(TimeSpan.FromSeconds(readSeconds), TimeSpan.FromSeconds(refreshSeconds));

        Assert.Equal(waitSeconds, wait.TotalSeconds, 3);
    }
}
