using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;
using RabbitMQ.Client;

namespace Nurture.Faults.Tests;

/// <summary>Small process helpers: run a command to its end, free ports, and what the machine has installed.</summary>
internal static class Host
{
    public static bool IsRoot => Environment.UserName == "root";

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs a command (as <paramref name="user"/> when we are root and one is given) and returns its exit code and output.</summary>
    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> arguments, string? user = null, TimeSpan? timeout = null)
    {
        var start = user is not null && IsRoot ? new ProcessStartInfo("runuser") { ArgumentList = { "-u", user, "--", file } } : new ProcessStartInfo(file);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not end within {(timeout ?? TimeSpan.FromMinutes(2)).TotalSeconds:N0} s");
        }
        return (process.ExitCode, await output + await error);
    }

    /// <summary>Sends a signal to one process we started (by its id).</summary>
    public static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, pid.ToString() }, UseShellExecute = false, RedirectStandardError = true });
        kill?.WaitForExit();
    }

    public static bool Alive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

/// <summary>
/// A PostgreSQL cluster of the fault suite's own: initdb into a temporary folder (as the postgres user when we are
/// root), on a free loopback port. Only this cluster is ever stopped; the shared server on 5432 is never touched.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _folder;
    private readonly string? _user;

    private PrivatePostgres(string bin, string folder, int port, string? user)
    {
        _bin = bin;
        _folder = folder;
        Port = port;
        _user = user;
    }

    public int Port { get; }
    public bool Running { get; private set; }
    private string Data => Path.Combine(_folder, "data");

    /// <summary>The newest /usr/lib/postgresql/*/bin with initdb and pg_ctl, or null.</summary>
    public static string? FindBinaries() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(v => Path.Combine(v, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "initdb")) && File.Exists(Path.Combine(b, "pg_ctl")))
                .OrderByDescending(b => int.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out var v) ? v : 0).FirstOrDefault()
            : null;

    public static async Task<PrivatePostgres> StartAsync(string bin)
    {
        var folder = Directory.CreateTempSubdirectory("nurture-faults-pg-").FullName;
        // PostgreSQL refuses to run as root: the cluster belongs to the postgres user then.
        var user = Host.IsRoot ? "postgres" : null;
        if (user is not null) await Host.RunAsync("chown", ["-R", user, folder]);
        var postgres = new PrivatePostgres(bin, folder, Host.FreePort(), user);
        var init = await Host.RunAsync(Path.Combine(bin, "initdb"), ["-D", postgres.Data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], user);
        if (init.Code != 0) throw new InvalidOperationException("initdb failed: " + init.Output);
        await postgres.StartAsync();
        return postgres;
    }

    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Timeout=5;Command Timeout=30";

    /// <summary>The suite's own connections are not pooled: a pooled one would not survive the outages it causes.</summary>
    public static string Unpooled(string connectionString) => connectionString + ";Pooling=false";

    public async Task StartAsync()
    {
        var options = $"-p {Port} -k {_folder} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c shared_buffers=64MB";
        var start = await Host.RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Data, "-l", Path.Combine(_folder, "postgres.log"), "-w", "-t", "120", "-o", options, "start"], _user, TimeSpan.FromMinutes(3));
        if (start.Code != 0) throw new InvalidOperationException($"pg_ctl start failed: {start.Output}\n{Log()}");
        Running = true;
    }

    /// <summary>Stops the cluster as an operator would (fast: open sessions are ended).</summary>
    public async Task StopAsync()
    {
        var stop = await Host.RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Data, "-m", "fast", "-w", "-t", "120", "stop"], _user, TimeSpan.FromMinutes(3));
        if (stop.Code != 0) throw new InvalidOperationException("pg_ctl stop failed: " + stop.Output);
        Running = false;
    }

    public async Task CreateDatabaseAsync(string name)
    {
        await using var connection = new NpgsqlConnection(Unpooled(ConnectionString()));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
    }

    private string Log()
    {
        try
        {
            return File.ReadAllText(Path.Combine(_folder, "postgres.log"));
        }
        catch (IOException)
        {
            return "";
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await Host.RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Data, "-m", "immediate", "-w", "stop"], _user, TimeSpan.FromMinutes(1));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            // Already stopped, or it will find its folder gone.
        }
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left in the temp folder.
        }
    }
}

/// <summary>
/// A RabbitMQ node of the fault suite's own: its own node name, AMQP and Erlang distribution ports, database, logs,
/// Erlang cookie (HOME) and no plugins, all in a temporary folder; epmd is shared, as it is meant to be. Stopped with
/// SIGTERM to its Erlang VM (a clean shutdown) and started again on the same database, so durable queues and
/// persistent messages survive as they would on a real broker. The shared broker on 5672 is never touched.
/// </summary>
public sealed class PrivateRabbitMq : IAsyncDisposable
{
    private readonly string _server;
    private readonly string _folder;
    private Process? _script;
    private string _log = "";

    private PrivateRabbitMq(string server, string folder)
    {
        _server = server;
        _folder = folder;
        Port = Host.FreePort();
        DistributionPort = Host.FreePort();
        Node = $"nurture-faults-{Environment.ProcessId}@localhost";
    }

    public int Port { get; }
    public int DistributionPort { get; }
    public string Node { get; }
    public Uri Amqp => new($"amqp://guest:guest@127.0.0.1:{Port}/");
    public bool Running => BeamPid() is { } pid && Host.Alive(pid);

    private static readonly string[] ServerPaths = ["/usr/lib/rabbitmq/bin/rabbitmq-server", "/usr/lib/rabbitmq/sbin/rabbitmq-server"];

    public static string? FindServer() => ServerPaths.FirstOrDefault(File.Exists);

    public static async Task<PrivateRabbitMq> StartAsync(string server)
    {
        var folder = Directory.CreateTempSubdirectory("nurture-faults-rmq-").FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "enabled_plugins"), "[].");
        await File.WriteAllTextAsync(Path.Combine(folder, "rabbitmq.conf"), "");
        await File.WriteAllTextAsync(Path.Combine(folder, "rabbitmq-env.conf"), "");
        var broker = new PrivateRabbitMq(server, folder);
        await broker.StartAsync();
        return broker;
    }

    public async Task StartAsync(TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(_server) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _folder };
        var environment = new Dictionary<string, string>
        {
            ["HOME"] = _folder, // its own Erlang cookie
            ["RABBITMQ_NODENAME"] = Node,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = Port.ToString(),
            ["RABBITMQ_DIST_PORT"] = DistributionPort.ToString(),
            ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(_folder, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(_folder, "log"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(_folder, "beam.pid"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(_folder, "enabled_plugins"),
            ["RABBITMQ_PLUGINS_EXPAND_DIR"] = Path.Combine(_folder, "plugins-expand"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(_folder, "rabbitmq"),
            ["RABBITMQ_ADVANCED_CONFIG_FILE"] = Path.Combine(_folder, "advanced.config"),
            ["RABBITMQ_CONF_ENV_FILE"] = Path.Combine(_folder, "rabbitmq-env.conf"),
            ["RABBITMQ_FEATURE_FLAGS_FILE"] = Path.Combine(_folder, "feature_flags"),
        };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        File.Delete(Path.Combine(_folder, "beam.pid"));
        _script = Process.Start(start)!;
        _script.OutputDataReceived += (_, e) => Keep(e.Data);
        _script.ErrorDataReceived += (_, e) => Keep(e.Data);
        _script.BeginOutputReadLine();
        _script.BeginErrorReadLine();

        var until = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromMinutes(3);
        while (true)
        {
            if (_script.HasExited && !Running) throw new InvalidOperationException($"rabbitmq-server ({Node}) stopped with exit code {_script.ExitCode}:\n{_log}");
            try
            {
                await using var connection = await new ConnectionFactory { Uri = Amqp, RequestedConnectionTimeout = TimeSpan.FromSeconds(2) }.CreateConnectionAsync();
                return;
            }
            catch (RabbitMQ.Client.Exceptions.BrokerUnreachableException) when (until.Elapsed < limit)
            {
                await Task.Delay(250);
            }
        }
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_folder) _log = (_log.Length > 8000 ? _log[^4000..] : _log) + line + "\n";
    }

    private int? BeamPid()
    {
        try
        {
            return int.TryParse(File.ReadAllText(Path.Combine(_folder, "beam.pid")).Trim(), out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Stops the node: SIGTERM to its Erlang VM, which shuts RabbitMQ down cleanly; SIGKILL after 60 s.</summary>
    public async Task StopAsync()
    {
        if (BeamPid() is not { } pid) return;
        Host.Signal(pid, "TERM");
        var until = Stopwatch.StartNew();
        while (Host.Alive(pid))
        {
            if (until.Elapsed > TimeSpan.FromSeconds(60)) Host.Signal(pid, "KILL");
            await Task.Delay(100);
        }
        if (_script is not null) await _script.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (BeamPid() is { } pid && Host.Alive(pid)) Host.Signal(pid, "KILL");
        if (_script is not null && !_script.HasExited) _script.Kill(entireProcessTree: true);
        _script?.Dispose();
        await Task.Delay(200);
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left in the temp folder.
        }
    }
}
