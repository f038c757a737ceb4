using Microsoft.Extensions.DependencyInjection;
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

    [Fact]
    public void Should_stretch_after_a_read_that_timed_out_and_not_after_one_that_found_the_database_away()
    {
        Assert.True(FunnelRefresher.TimedOut(new Npgsql.NpgsqlException("Exception while reading from stream", new TimeoutException("Timeout during reading attempt"))));
        Assert.True(FunnelRefresher.TimedOut(new InvalidOperationException("the report", new TimeoutException())));
        Assert.False(FunnelRefresher.TimedOut(new Npgsql.NpgsqlException("Failed to connect to 127.0.0.1:5432", new System.Net.Sockets.SocketException(111))));
        Assert.False(FunnelRefresher.TimedOut(new Microsoft.Data.Sqlite.SqliteException("SQLite Error 5: 'database is locked'.", 5)));
    }

    [Fact]
    public async Task Should_say_how_old_the_gauges_are()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 3, 2, 9, 30, 0, TimeSpan.Zero));
        var database = Storage.TestDatabase.Create(Nurture.Worker.Storage.DatabaseProvider.Sqlite);
        var definition = Core.DefaultDefinition.Create();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var metrics = new NurtureMetrics(meters, clock);
        Assert.Empty(Age(meters)); // nothing read yet: no figure rather than a made-up one

        metrics.Latest = await FunnelReport.ReadAsync(new Nurture.Worker.Storage.LeadStore(database), definition, clock.GetUtcNow());
        clock.Advance(TimeSpan.FromSeconds(90));

        Assert.Equal([90.0], Age(meters));
    }

    private static List<double> Age(System.Diagnostics.Metrics.IMeterFactory meters)
    {
        var values = new List<double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == "nurture.funnel.age") l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<double>((_, value, _, _) => values.Add(value));
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }
}
