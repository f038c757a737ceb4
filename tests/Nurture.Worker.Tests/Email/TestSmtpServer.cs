using System.Buffers;
using System.Net;
using System.Net.Sockets;
using MimeKit;
using SmtpServer;
using SmtpServer.Mail;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Nurture.Worker.Tests.Email;

/// <summary>
/// A real SMTP server in the test process (the SmtpServer package) on a free loopback port. It keeps what it accepts,
/// refuses recipients in <see cref="Refuse"/> with 550, and answers DATA with whatever <see cref="Reply"/> says.
/// </summary>
public sealed class TestSmtpServer : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly SmtpServer.SmtpServer _server;
    private readonly Task _running;

    public TestSmtpServer()
    {
        Port = FreePort();
        var options = new SmtpServerOptionsBuilder().ServerName("localhost").Endpoint(e => e.Endpoint(new IPEndPoint(IPAddress.Loopback, Port))).Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Store(this));
        services.Add(new Filter(this));
        _server = new SmtpServer.SmtpServer(options, services);
        _running = _server.StartAsync(_stop.Token);
    }

    public int Port { get; }
    public List<MimeMessage> Received { get; } = [];
    public HashSet<string> Refuse { get; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>The reply to the n-th DATA (counting from 1); accepted (250) when it returns null.</summary>
    public Func<int, SmtpResponse?> Reply { get; set; } = _ => null;
    public int DataCommands { get; private set; }

    public IReadOnlyList<MimeMessage> Messages
    {
        get
        {
            lock (Received) return [.. Received];
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _server.Shutdown();
        try
        {
            _running.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Stopped.
        }
        _stop.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class Store(TestSmtpServer server) : MessageStore
    {
        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            lock (server.Received)
            {
                server.DataCommands++;
                if (server.Reply(server.DataCommands) is { } refusal) return Task.FromResult(refusal);
                using var stream = new MemoryStream(buffer.ToArray());
                server.Received.Add(MimeMessage.Load(stream, cancellationToken));
            }
            return Task.FromResult(SmtpResponse.Ok);
        }
    }

    private sealed class Filter(TestSmtpServer server) : IMailboxFilter
    {
        public Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken) => Task.FromResult(true);

        public Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken) =>
            Task.FromResult(!server.Refuse.Contains($"{to.User}@{to.Host}"));
    }
}
