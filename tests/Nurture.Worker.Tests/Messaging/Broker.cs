using Testcontainers.RabbitMq;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>
/// A real RabbitMQ for the end-to-end tests: a Testcontainers container where a Docker engine is present, otherwise
/// the local broker named by NURTURE_TEST_RABBITMQ (the README's test command installs Debian's rabbitmq-server,
/// starts it and sets it). With neither, the tests are skipped, saying why.
/// </summary>
public sealed class Broker : IAsyncLifetime
{
    public const string Variable = "NURTURE_TEST_RABBITMQ";

    private RabbitMqContainer? _container;

    public Uri? Amqp { get; private set; }
    public string? Unavailable { get; private set; }

    public async Task InitializeAsync()
    {
        if (DockerIsPresent())
        {
            _container = new RabbitMqBuilder("rabbitmq:4-management").Build();
            await _container.StartAsync();
            Amqp = new Uri(_container.GetConnectionString());
            return;
        }
        var local = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrWhiteSpace(local)) Amqp = new Uri(local);
        else Unavailable = $"RabbitMQ tests need a Docker engine or {Variable} (an amqp:// URI); neither is here. Run ./test.sh, which starts Debian's rabbitmq-server.";
    }

    public async Task DisposeAsync()
    {
        if (_container is not null) await _container.DisposeAsync();
    }

    /// <summary>The broker's address, or a skip saying why there is none.</summary>
    public Uri Require()
    {
        Skip.If(Amqp is null, Unavailable);
        return Amqp!;
    }

    /// <summary>DOCKER_HOST is set, or the default socket accepts a connection (a socket file alone may be left over).</summary>
    private static bool DockerIsPresent()
    {
        if (!string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("DOCKER_HOST"))) return true;
        if (!File.Exists("/var/run/docker.sock")) return false;
        try
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint("/var/run/docker.sock"));
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
