using BenchmarkDotNet.Running;
using Nurture.Benchmarks;

// One verb per benchmark; each verb's code lives in its own files.
return args.FirstOrDefault() switch
{
    "batches" => Batches(args[1..]),
    "pipeline" => await PipelineBenchmark.RunAsync(args[1..]),
    "ingest" => await PipelineIngestBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Batches(string[] rest)
{
    BenchmarkRunner.Run<StoreBatches>(args: rest);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("""
        Nurture benchmarks (run with -c Release):
          batches [BenchmarkDotNet options]   StoreBatches: one transaction per event against batches of 20 and 100 (SQLite)
          pipeline [--events 50000]           drain rates of a no-op consumer, a Dapper-insert consumer and the worker; publish→stored latency
          ingest [--events 20000]             the `ingest` command against a plain batched insert, on PostgreSQL and SQLite
        """);
    return 2;
}
