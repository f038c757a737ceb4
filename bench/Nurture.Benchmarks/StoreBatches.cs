using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Storage;

BenchmarkRunner.Run<Nurture.Benchmarks.StoreBatches>(args: args);

namespace Nurture.Benchmarks
{
    /// <summary>
    /// Why the consumers take events in batches: the sample's first 600 events stored one transaction per event (the
    /// baseline) against one per batch of 20 and of 100, each into a fresh SQLite file. Read the Ratio column.
    /// </summary>
    [MemoryDiagnoser]
    [SimpleJob(warmupCount: 1, iterationCount: 5)]
    public class StoreBatches
    {
        private readonly Definition _definition = DefaultDefinition.Create();
        private IReadOnlyList<NurtureMessage> _events = [];
        private Microsoft.Extensions.DependencyInjection.ServiceProvider _services = null!;
        private Nurture.Worker.Leads.LeadEventHandler _handler = null!;
        private string _file = "";

        [GlobalSetup]
        public void Events() => _events = SampleLeads.Generate(150, 7, new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero), 60, _definition).Take(600).ToList();

        [IterationSetup]
        public void FreshDatabase()
        {
            _file = Path.Combine(Path.GetTempPath(), $"nurture-bench-{Guid.NewGuid():N}.db");
            var database = new Database(DatabaseProvider.Sqlite, $"Data Source={_file}");
            database.Migrate();
            _services = Nurture.Worker.Leads.LeadServices.WithoutBus(database, _definition);
            _handler = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Nurture.Worker.Leads.LeadEventHandler>(_services);
        }

        [IterationCleanup]
        public void Remove()
        {
            _services.Dispose();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var f in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(_file) + "*")) File.Delete(f);
        }

        [Benchmark(Baseline = true)]
        public Task OneTransactionPerEvent() => Store(1);

        [Benchmark]
        public Task BatchesOf20() => Store(20);

        [Benchmark]
        public Task BatchesOf100() => Store(100);

        private async Task Store(int batchSize)
        {
            foreach (var chunk in _events.Chunk(batchSize)) await _handler.HandleNowAsync(chunk, "bench", CancellationToken.None);
        }
    }
}
