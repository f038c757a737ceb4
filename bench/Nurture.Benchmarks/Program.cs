using BenchmarkDotNet.Running;
using Nurture.Benchmarks;

// One verb per benchmark; each verb's code lives in its own files.
try
{
    return args.FirstOrDefault() switch
    {
        "batches" => Batches(args[1..]),
        "pipeline" => await PipelineBenchmark.RunAsync(args[1..]),
        "ingest" => await PipelineIngestBenchmark.RunAsync(args[1..]),
        "dispatch" => await DispatchBench.RunAsync(args[1..]),
        _ => Usage(),
    };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

static int Batches(string[] rest)
{
    BenchmarkRunner.Run<StoreBatches>(args: rest);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("""
        Nurture benchmarks (build with -c Release; see bench/README.md):
          batches [BenchmarkDotNet options]   StoreBatches: one transaction per event against batches of 20 and 100 (SQLite)
          pipeline [--events 50000] [--warmup 600] [--settle] [--seconds 20] [--rate R] [--latency-only] [--worker PATH]
                                              drain rates of a no-op consumer, a Dapper-insert consumer and the worker; publish→stored latency
          ingest [--events 20000] [--worker PATH]
                                              the `ingest` command against a plain batched insert, on PostgreSQL and SQLite
          dispatch [options]                  Nurture's dispatch against a plain MailKit loop and Quartz one trigger per email (DispatchBench.cs)
        """);
    return 2;
}
