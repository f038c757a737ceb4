using System.Diagnostics;
using System.Net;
using Nurture.Worker.Tests;

namespace Nurture.Faults.Tests;

/// <summary>
/// The built worker run as a user runs it, `dotnet Nurture.Worker.dll --Section:Key=value …` with secrets in its
/// environment, as a child process, so that kill -9 is real. The last lines it wrote are kept for failure messages.
/// </summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _lines = new();
    private StreamWriter? _log;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private WorkerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        _http.BaseAddress = new Uri($"http://127.0.0.1:{port}");
    }

    public int Port { get; }
    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public HttpClient Http => _http;

    /// <summary>The worker the tests' solution build left (Release when the tests are Release).</summary>
    public static string Dll { get; } = FindDll();

    private static string FindDll()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var path = Path.Combine(Repository.Root, "src", "Nurture.Worker", "bin", configuration, "net10.0", "Nurture.Worker.dll");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist; build the solution first (dotnet build Nurture.sln -c {configuration}).");
        return path;
    }

    public static WorkerProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string folder)
    {
        Directory.CreateDirectory(folder);
        var port = Host.FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Dll);
        start.ArgumentList.Add($"--urls=http://127.0.0.1:{port}");
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // The worker reads only what it is given here, not the test runner's environment.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Nurture__", StringComparison.Ordinal) || k.StartsWith("ConnectionStrings__", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }
        foreach (var (key, value) in environment) start.Environment[key] = value;
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var process = new Process { StartInfo = start };
        var worker = new WorkerProcess(process, port);
        // NURTURE_FAULTS_LOGS names a folder that keeps every worker's whole output, for a failure that needs more than the last lines.
        if (Environment.GetEnvironmentVariable("NURTURE_FAULTS_LOGS") is { Length: > 0 } logs)
        {
            Directory.CreateDirectory(logs);
            worker._log = new StreamWriter(Path.Combine(logs, $"worker-{DateTime.UtcNow:HHmmss}-{port}.log")) { AutoFlush = true };
        }
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
        lock (_lines)
        {
            _log?.WriteLine(line);
            _lines.Enqueue(line);
            while (_lines.Count > 60) _lines.Dequeue();
        }
    }

    public string Output()
    {
        lock (_lines) return string.Join(Environment.NewLine, _lines);
    }

    /// <summary>GET /health/ready: 200, 503, or 0 when it does not answer at all.</summary>
    public async Task<int> ReadyAsync()
    {
        try
        {
            using var response = await _http.GetAsync(new Uri("/health/ready", UriKind.Relative));
            return (int)response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    /// <summary>Polls /health/ready until it answers 200; fails with the worker's last lines if it stops or does not get there.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var until = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The worker stopped with exit code {_process.ExitCode}:\n{Output()}");
            if (await ReadyAsync() == (int)HttpStatusCode.OK) return;
            if (until.Elapsed > timeout) throw new TimeoutException($"The worker was not ready within {timeout.TotalSeconds:N0} s:\n{Output()}");
            await Task.Delay(100);
        }
    }

    /// <summary>kill -9: no shutdown, no flush, whatever it was doing.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        Host.Signal(_process.Id, "KILL");
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM (Ctrl+C); SIGKILL when it has not ended within 30 s.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        Host.Signal(_process.Id, "TERM");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
        }
    }

    public void ThrowIfExited()
    {
        if (_process.HasExited) throw new InvalidOperationException($"The worker stopped with exit code {_process.ExitCode}:\n{Output()}");
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
        _http.Dispose();
        lock (_lines)
        {
            _log?.Dispose();
            _log = null;
        }
    }
}

/// <summary>Waits for a condition by polling it, failing with what was last seen; never assumes that what it reads exists yet.</summary>
public static class Eventually
{
    public static async Task<T> Until<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan within, string what, Action? check = null)
    {
        var until = Stopwatch.StartNew();
        while (true)
        {
            check?.Invoke();
            var last = await read();
            if (done(last)) return last;
            if (until.Elapsed > within) throw new TimeoutException($"Waited {within.TotalSeconds:N0} s for {what}; last seen: {last}");
            await Task.Delay(100);
        }
    }
}
