using System.Diagnostics;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using Nurture.Contracts;

namespace Nurture.Benchmarks;

/// <summary>
/// `ingest [--events 20000] [--worker PATH]`: the `ingest` command, run as a process on an NDJSON file of N generated
/// events, against a plain batched insert of the same file (Dapper, 500 events a transaction), on PostgreSQL and on
/// SQLite, each into a fresh database.
/// </summary>
public static class PipelineIngestBenchmark
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    public static async Task<int> RunAsync(string[] args)
    {
        var count = PipelineServers.Option(args, "--events", 20_000);
        var dll = PipelineServers.WorkerDll(args);
        var folder = Path.Combine(Path.GetTempPath(), $"nurture-bench-{PipelineServers.RunId}-ingest");
        Directory.CreateDirectory(folder);
        try
        {
            var file = Path.Combine(folder, "events.ndjson");
            await File.WriteAllLinesAsync(file, PipelineServers.Events(count).Select(EventJson.Write));
            var empty = Path.Combine(folder, "empty.ndjson");
            await File.WriteAllTextAsync(empty, "");
            Console.WriteLine($"ingest: {count:N0} events ({new FileInfo(file).Length / 1e6:N1} MB of NDJSON), run {PipelineServers.RunId}, {DateTimeOffset.UtcNow:u}");
            Console.WriteLine($"machine: {PipelineServers.Machine()}");
            Console.WriteLine($"worker: {dll}");

            await PostgreSqlAsync(dll, file, empty, count);
            await SqliteAsync(dll, file, empty, count, folder);
            Console.WriteLine($"machine after: load average {PipelineServers.LoadAverage()}");
            return 0;
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task PostgreSqlAsync(string dll, string file, string empty, int count)
    {
        TimeSpan fixedCost, ingest, plain;
        await using (var database = await BenchDatabase.CreateAsync("ingest_empty"))
        {
            fixedCost = await IngestAsync(dll, empty, "PostgreSql", database.ConnectionString);
        }
        await using (var database = await BenchDatabase.CreateAsync("ingest"))
        {
            ingest = await IngestAsync(dll, file, "PostgreSql", database.ConnectionString);
            Check(await database.CountAsync("SELECT COUNT(*) FROM lead_events"), count, "PostgreSQL lead_events");
        }
        await using (var database = await BenchDatabase.CreateAsync("plain"))
        {
            await using var connection = new NpgsqlConnection(database.ConnectionString);
            await connection.OpenAsync();
            await connection.ExecuteAsync(PipelineBenchmark.InsertConsumer.Table);
            plain = await PlainInsertAsync(connection, file, e => new
            {
                e.EventId, LeadId = (e as LeadEvent)?.LeadId, Type = e.GetType().Name, OccurredAt = e.OccurredAt.ToUniversalTime(),
                ReceivedAt = DateTimeOffset.UtcNow, Payload = EventJson.Write(e),
            });
            Check(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM events"), count, "PostgreSQL events");
        }
        Print("PostgreSQL", count, fixedCost, ingest, plain);
    }

    private static async Task SqliteAsync(string dll, string file, string empty, int count, string folder)
    {
        static string Source(string path) => $"Data Source={path}";
        var fixedCost = await IngestAsync(dll, empty, "Sqlite", Source(Path.Combine(folder, "empty.db")));
        var nurture = Path.Combine(folder, "ingest.db");
        var ingest = await IngestAsync(dll, file, "Sqlite", Source(nurture));
        await using (var connection = new SqliteConnection(Source(nurture)))
        {
            Check(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM lead_events"), count, "SQLite lead_events");
        }
        TimeSpan plain;
        await using (var connection = new SqliteConnection(Source(Path.Combine(folder, "plain.db"))))
        {
            await connection.OpenAsync();
            // The pragmas Nurture sets on every SQLite connection, and its table's column types (times as ISO 8601 text).
            await connection.ExecuteAsync("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL;");
            await connection.ExecuteAsync("""
                CREATE TABLE events (event_id TEXT NOT NULL PRIMARY KEY, lead_id TEXT NULL, type TEXT NOT NULL,
                    occurred_at TEXT NOT NULL, received_at TEXT NOT NULL, payload TEXT NOT NULL)
                """);
            plain = await PlainInsertAsync(connection, file, e => new
            {
                EventId = e.EventId.ToString(), LeadId = (e as LeadEvent)?.LeadId, Type = e.GetType().Name,
                OccurredAt = e.OccurredAt.UtcDateTime.ToString("O"), ReceivedAt = DateTime.UtcNow.ToString("O"), Payload = EventJson.Write(e),
            });
            Check(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM events"), count, "SQLite events");
        }
        Print("SQLite", count, fixedCost, ingest, plain);
    }

    /// <summary>`dotnet Nurture.Worker.dll ingest FILE` as a user runs it; the time from process start to exit.</summary>
    private static async Task<TimeSpan> IngestAsync(string dll, string file, string provider, string connectionString)
    {
        var folder = Path.Combine(Path.GetTempPath(), $"nurture-bench-{PipelineServers.RunId}-ingest-{Guid.NewGuid():N}");
        var started = Stopwatch.GetTimestamp();
        await using var process = WorkerProcess.Start(dll, ["ingest", file, $"--Nurture:Database:Provider={provider}"],
            new Dictionary<string, string> { ["ConnectionStrings__Nurture"] = connectionString }, folder);
        var exit = await process.WaitForExitAsync(Limit);
        var time = Stopwatch.GetElapsedTime(started);
        if (exit != 0) throw new InvalidOperationException($"ingest ended with exit code {exit}:\n{process.Output()}");
        return time;
    }

    /// <summary>The baseline: read the same file, insert each event with Dapper, 500 a transaction.</summary>
    private static async Task<TimeSpan> PlainInsertAsync(System.Data.Common.DbConnection connection, string file, Func<NurtureMessage, object> row)
    {
        const string insert = """
            INSERT INTO events (event_id, lead_id, type, occurred_at, received_at, payload)
            VALUES (@EventId, @LeadId, @Type, @OccurredAt, @ReceivedAt, @Payload)
            """;
        var started = Stopwatch.GetTimestamp();
        using var reader = new StreamReader(file);
        var batch = new List<object>(500);
        async Task Flush()
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync(insert, batch, transaction);
            await transaction.CommitAsync();
            batch.Clear();
        }
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            batch.Add(row(EventJson.Parse(line)));
            if (batch.Count == 500) await Flush();
        }
        if (batch.Count > 0) await Flush();
        return Stopwatch.GetElapsedTime(started);
    }

    private static void Check(long stored, int expected, string what)
    {
        if (stored != expected) throw new InvalidOperationException($"{what}: {stored:N0} rows, expected {expected:N0}.");
    }

    private static void Print(string database, int count, TimeSpan fixedCost, TimeSpan ingest, TimeSpan plain)
    {
        var whole = count / ingest.TotalSeconds;
        var net = count / Math.Max(0.001, (ingest - fixedCost).TotalSeconds);
        var baseline = count / plain.TotalSeconds;
        Console.WriteLine($"{database}:");
        Console.WriteLine($"  plain insert (Dapper, 500 a transaction)  {PipelineServers.Rate(baseline)}  ({plain.TotalSeconds:N1} s)");
        Console.WriteLine($"  `ingest` process, whole run               {PipelineServers.Rate(whole)}  ({ingest.TotalSeconds:N1} s)");
        Console.WriteLine($"  `ingest` less start-up                    {PipelineServers.Rate(net)}  ({fixedCost.TotalSeconds:N1} s start, migrate and report on an empty file)");
        Console.WriteLine($"  ingest/plain {whole / baseline:P1} (less start-up {net / baseline:P1})");
    }
}
