using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Nurture.Benchmarks;

/// <summary>What the pipeline and ingest benchmarks share: the servers, generated events, the worker as a process.</summary>
public static class PipelineServers
{
    /// <summary>The same servers the tests use (NURTURE_TEST_POSTGRES / NURTURE_TEST_RABBITMQ), on 127.0.0.1 by default.</summary>
    public static string Postgres { get; } =
        Environment.GetEnvironmentVariable("NURTURE_BENCH_POSTGRES") ?? Environment.GetEnvironmentVariable("NURTURE_TEST_POSTGRES")
        ?? "Host=127.0.0.1;Port=5432;Username=nurture;Password=nurture;Database=postgres";

    public static Uri RabbitMq { get; } = new(
        Environment.GetEnvironmentVariable("NURTURE_BENCH_RABBITMQ") ?? Environment.GetEnvironmentVariable("NURTURE_TEST_RABBITMQ")
        ?? "amqp://guest:guest@127.0.0.1:5672/");

    /// <summary>A short id that makes this run's queues, exchanges and databases its own.</summary>
    public static string RunId { get; } = Guid.NewGuid().ToString("N")[..8];

    public static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        if (i < 0) return fallback;
        if (i + 1 < args.Length && int.TryParse(args[i + 1], out var value) && value > 0) return value;
        throw new ArgumentException($"{name}: give a positive whole number, e.g. {name} {fallback}.");
    }

    public static string? TextOption(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>Realistic events (the sample's three businesses), the first <paramref name="count"/> in time order.</summary>
    public static IReadOnlyList<NurtureMessage> Events(int count)
    {
        var definition = DefaultDefinition.Create();
        for (var leads = count / 4 + 100; ; leads *= 2)
        {
            var events = SampleLeads.Generate(leads, seed: 7, new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero), days: 120, definition);
            if (events.Count >= count) return events.Take(count).ToList();
        }
    }

    public static byte[] Plain(NurtureMessage message) => Encoding.UTF8.GetBytes(EventJson.Write(message));

    public static string Rate(double perSecond) => $"{perSecond,9:N0} events/s";

    public static string Machine() =>
        $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, load average {LoadAverage()}";

    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    /// <summary>The repository root (where Nurture.sln is), from the working folder or the benchmark's own folder.</summary>
    public static string RepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Nurture.sln"))) return dir.FullName;
            }
        }
        throw new InvalidOperationException("Run the benchmarks from inside the Nurture repository (Nurture.sln not found).");
    }

    /// <summary>The worker as `dotnet build -c Release` leaves it (or --worker PATH).</summary>
    public static string WorkerDll(string[] args)
    {
        var path = TextOption(args, "--worker") ?? Path.Combine(RepositoryRoot(), "src", "Nurture.Worker", "bin", "Release", "net10.0", "Nurture.Worker.dll");
        if (!File.Exists(path)) throw new ArgumentException($"--worker: {path} does not exist; build it first: dotnet build src/Nurture.Worker -c Release");
        return Path.GetFullPath(path);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];
}

/// <summary>A PostgreSQL database of this run's own, dropped when disposed.</summary>
public sealed class BenchDatabase : IAsyncDisposable
{
    private BenchDatabase(string name, string connectionString)
    {
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }
    public string ConnectionString { get; }

    public static async Task<BenchDatabase> CreateAsync(string purpose)
    {
        var name = $"nurture_bench_{PipelineServers.RunId}_{purpose}";
        await using (var admin = new NpgsqlConnection(PipelineServers.Postgres))
        {
            await admin.OpenAsync();
            await admin.ExecuteAsync($"CREATE DATABASE {name}");
        }
        var connectionString = new NpgsqlConnectionStringBuilder(PipelineServers.Postgres) { Database = name }.ConnectionString;
        return new BenchDatabase(name, connectionString);
    }

    public async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(sql);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(PipelineServers.Postgres);
        await admin.OpenAsync();
        await admin.ExecuteAsync($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)");
    }
}

/// <summary>This run's queues and exchanges on RabbitMQ: plain-JSON publishing, counting, deleting.</summary>
public sealed class BenchBroker : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly HashSet<string> _queues = [];
    private readonly HashSet<string> _exchanges = [];

    private BenchBroker(IConnection connection) => _connection = connection;

    public static async Task<BenchBroker> ConnectAsync() =>
        new(await new ConnectionFactory { Uri = PipelineServers.RabbitMq, ClientProvidedName = "nurture-bench" }.CreateConnectionAsync());

    /// <summary>Remembers a queue (and the exchanges MassTransit names after it) to delete at the end.</summary>
    public string Own(string queue)
    {
        _queues.UnionWith([queue, queue + "_error", queue + "_skipped"]);
        _exchanges.UnionWith([queue, queue + "_error", queue + "_skipped"]);
        return queue;
    }

    public void OwnExchange(string exchange) => _exchanges.Add(exchange);

    public async Task DeclareQueueAsync(string queue)
    {
        await using var channel = await _connection.CreateChannelAsync();
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false);
    }

    /// <summary>Publishes plain JSON as a publisher that is not .NET does, in parallel chunks, each confirmed by the broker.</summary>
    public async Task PublishConfirmedAsync(string exchange, string routingKey, IEnumerable<byte[]> bodies)
    {
        await using var channel = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        var properties = new BasicProperties { ContentType = "application/json", Persistent = true };
        foreach (var chunk in bodies.Chunk(500))
        {
            await Task.WhenAll(chunk.Select(body => channel.BasicPublishAsync(exchange, routingKey, mandatory: true, properties, body).AsTask()));
        }
    }

    public Task<IChannel> OpenChannelAsync() => _connection.CreateChannelAsync();

    /// <summary>Messages ready in the queue (not yet handed to a consumer); -1 when the queue does not exist.</summary>
    public async Task<long> ReadyAsync(string queue)
    {
        try
        {
            await using var channel = await _connection.CreateChannelAsync();
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (OperationInterruptedException)
        {
            return -1;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var queue in _queues)
        {
            await using var channel = await _connection.CreateChannelAsync();
            await channel.QueueDeleteAsync(queue);
        }
        foreach (var exchange in _exchanges)
        {
            await using var channel = await _connection.CreateChannelAsync();
            await channel.ExchangeDeleteAsync(exchange);
        }
        await _connection.DisposeAsync();
    }
}

/// <summary>
/// The built worker run as a user runs it: `dotnet Nurture.Worker.dll [command] [--Section:Key=value …]`, secrets in
/// the environment, in a working folder of its own.
/// </summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();
    private readonly string _folder;

    private WorkerProcess(Process process, string folder)
    {
        _process = process;
        _folder = folder;
    }

    public int ExitCode => _process.ExitCode;
    public bool HasExited => _process.HasExited;

    /// <summary>The CPU time the worker has used so far (user and system).</summary>
    public TimeSpan ProcessorTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    public static WorkerProcess Start(string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string folder)
    {
        Directory.CreateDirectory(folder);
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment) start.Environment[key] = value;
        // The worker must read only what it is given here, not a developer's shell.
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var process = new Process { StartInfo = start };
        var worker = new WorkerProcess(process, folder);
        process.OutputDataReceived += (_, e) => worker.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => worker.Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_lastLines)
        {
            _lastLines.Enqueue(line);
            while (_lastLines.Count > 40) _lastLines.Dequeue();
        }
    }

    public string Output()
    {
        lock (_lastLines) return string.Join(Environment.NewLine, _lastLines);
    }

    /// <summary>Waits until GET /health/ready answers 200.</summary>
    public async Task WaitReadyAsync(int port, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var until = Stopwatch.StartNew();
        while (until.Elapsed < timeout)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The worker stopped with exit code {_process.ExitCode}:\n{Output()}");
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/health/ready"));
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Busy starting.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"The worker was not ready within {timeout.TotalSeconds:N0} s:\n{Output()}");
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }

    /// <summary>Stops it as Ctrl+C would (SIGTERM), and kills it if it has not ended within 30 s.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString() }, UseShellExecute = false }))
        {
            if (kill is not null) await kill.WaitForExitAsync();
        }
        try
        {
            await WaitForExitAsync(TimeSpan.FromSeconds(30));
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp folder; harmless.
        }
    }
}
