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

    [SkippableFact]
    public async Task Should_wait_nine_times_a_read_that_timed_out_and_read_again_once_the_database_answers()
    {
        var database = Storage.TestDatabase.Create(Nurture.Worker.Storage.DatabaseProvider.PostgreSql);
        // Every read gives up after a second: the command timeout a slow database runs into.
        var impatient = new Nurture.Worker.Storage.Database(Nurture.Worker.Storage.DatabaseProvider.PostgreSql,
            new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString) { CommandTimeout = 1 }.ConnectionString);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new NurtureMetrics(services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), TimeProvider.System);
        var log = new RecordingLogger();
        using var refresher = new FunnelRefresher(new Nurture.Worker.Storage.LeadStore(impatient), Core.DefaultDefinition.Create(), TimeProvider.System,
            metrics, new MetricsSettings { RefreshSeconds = 1 }, log);
        // Another session holds the leads table, which the report reads first, so the first read times out.
        await using var blocker = await database.OpenAsync();
        var hold = await blocker.BeginTransactionAsync();
        await Dapper.SqlMapper.ExecuteAsync(blocker, "LOCK TABLE leads IN ACCESS EXCLUSIVE MODE", transaction: hold);

        await refresher.StartAsync(CancellationToken.None);
        await Messaging.Eventually.Until(() => Task.FromResult(log.Count("failed")), n => n == 1, what: "the first read to time out");
        await hold.RollbackAsync();
        // The read took about a second, so the next comes about nine seconds later, not after RefreshSeconds (1 s).
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Equal(1, log.Count("failed"));
        Assert.Null(metrics.Latest);
        Assert.Equal(1, log.Count("instead of every"));

        // Then the database answers: the gauges are read.
        await Messaging.Eventually.Until(() => Task.FromResult(metrics.Latest), latest => latest is not null, TimeSpan.FromSeconds(60), "the gauges to be read");
        await refresher.StopAsync(CancellationToken.None);
    }

    private sealed class RecordingLogger : Microsoft.Extensions.Logging.ILogger<FunnelRefresher>
    {
        private readonly List<string> _messages = [];

        public int Count(string part)
        {
            lock (_messages) return _messages.Count(m => m.Contains(part, StringComparison.Ordinal));
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_messages) _messages.Add(formatter(state, exception));
        }
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
