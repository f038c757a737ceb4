using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Nurture.Worker.Tests.Email;

/// <summary>
/// A minimal SMTP server on a loopback port that offers PIPELINING and counts what it accepts (by Message-ID). It can
/// be stopped and started again on the same port (an outage), and a hook runs before each message is accepted: it may
/// look at the database, or drop the connection instead of answering (a crash or a broken network). The dispatch
/// benchmark uses it as its counting sink.
/// </summary>
public sealed class PipeliningSmtpServer : IAsyncDisposable
{
    private static readonly Encoding Bytes = Encoding.Latin1;
    private readonly ConcurrentDictionary<Socket, bool> _open = new();
    private TcpListener? _listener;
    private CancellationTokenSource? _stop;
    private Task _accepting = Task.CompletedTask;
    private int _data;
    private int _accepted;

    public PipeliningSmtpServer(int? port = null, bool start = true)
    {
        Port = port ?? FreePort();
        if (start) Start();
    }

    public int Port { get; }

    /// <summary>Runs before the n-th message (counting from 1, over all connections) is accepted; false drops its connection unanswered.</summary>
    public Func<int, Task<bool>> BeforeAccepting { get; set; } = _ => Task.FromResult(true);

    /// <summary>Message-IDs accepted, with how often each was.</summary>
    public ConcurrentDictionary<string, int> Accepted { get; } = new(StringComparer.Ordinal);

    /// <summary>Keep the Message-IDs (tests); off, the server only counts (the benchmark's millions).</summary>
    public bool KeepIds { get; init; } = true;

    public int AcceptedCount => Volatile.Read(ref _accepted);

    public int Connections { get; private set; }

    public void Start()
    {
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start(512);
        _stop = new CancellationTokenSource();
        _accepting = AcceptAsync(_listener, _stop.Token);
    }

    /// <summary>Stops listening and closes every open connection.</summary>
    public async Task StopAsync()
    {
        if (_stop is null) return;
        await _stop.CancelAsync();
        _listener?.Stop();
        foreach (var socket in _open.Keys) socket.Close();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
        _stop.Dispose();
        _stop = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken stop)
    {
        var sessions = new List<Task>();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var socket = await listener.AcceptSocketAsync(stop);
                socket.NoDelay = true;
                Connections++;
                _open[socket] = true;
                sessions.Add(Task.Run(() => SessionAsync(socket, stop), CancellationToken.None));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
        await Task.WhenAll(sessions);
    }

    private async Task SessionAsync(Socket socket, CancellationToken stop)
    {
        try
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var reader = new LineReader(stream);
            var replies = new StringBuilder();
            async Task Reply(string text, bool flush = false)
            {
                replies.Append(text).Append("\r\n");
                // PIPELINING: answer a group of commands in one write, once the client waits for them.
                if (flush || !reader.HasBuffered)
                {
                    await stream.WriteAsync(Bytes.GetBytes(replies.ToString()), stop);
                    replies.Clear();
                }
            }
            await Reply("220 localhost ESMTP counting sink", flush: true);
            while (await reader.ReadLineAsync(stop) is { } line)
            {
                var verb = (line.Length >= 4 ? line[..4] : line).ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await Reply("250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760");
                        break;
                    case "HELO" or "MAIL" or "RCPT" or "RSET" or "NOOP":
                        await Reply("250 OK");
                        break;
                    case "DATA":
                        await Reply("354 end with <CRLF>.<CRLF>", flush: true);
                        string? id = null;
                        while (await reader.ReadLineAsync(stop) is { } data && data != ".")
                        {
                            if (id is null && data.StartsWith("Message-ID:", StringComparison.OrdinalIgnoreCase)) id = data[11..].Trim().Trim('<', '>');
                        }
                        if (!await BeforeAccepting(Interlocked.Increment(ref _data))) return; // dropped, unanswered
                        Interlocked.Increment(ref _accepted);
                        if (KeepIds) Accepted.AddOrUpdate(id ?? "(none)", 1, (_, n) => n + 1);
                        await Reply("250 2.0.0 accepted");
                        break;
                    case "QUIT":
                        await Reply("221 bye", flush: true);
                        return;
                    default:
                        await Reply("502 command not implemented");
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the server stopped.
        }
        finally
        {
            _open.TryRemove(socket, out _);
        }
    }

    /// <summary>Lines over a stream, saying whether more input is already buffered (so replies can wait for it).</summary>
    private sealed class LineReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public bool HasBuffered => _start < _end;

        public async Task<string?> ReadLineAsync(CancellationToken cancel)
        {
            var line = new StringBuilder();
            while (true)
            {
                var newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (newline >= 0)
                {
                    line.Append(Bytes.GetString(_buffer, _start, newline - _start));
                    _start = newline + 1;
                    if (line.Length > 0 && line[^1] == '\r') line.Length--;
                    return line.ToString();
                }
                line.Append(Bytes.GetString(_buffer, _start, _end - _start));
                _start = _end = 0;
                var read = await stream.ReadAsync(_buffer, cancel);
                if (read == 0) return null;
                _end = read;
            }
        }
    }
}
