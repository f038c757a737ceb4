using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RabbitMQ.Client;

namespace Nurture.Worker.Messaging;

/// <summary>
/// Ready only while RabbitMQ answers: a connection of its own, open or not. MassTransit's bus check turns unhealthy
/// only once its consumer has finished the messages it holds (up to Nurture:Bus:Prefetch of them), which under load
/// took 29 s and more after the broker was gone; this one knows as soon as the socket closes.
/// </summary>
public sealed class BrokerHealthCheck(BusSettings settings) : IHealthCheck, IAsyncDisposable
{
    /// <summary>
    /// A connection closed this long is given up and a new one made: automatic recovery does not start after some
    /// closes (the broker refusing access, say), and a check that only waited would stay unhealthy until a restart.
    /// </summary>
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(15);

    // Never disposed: a check still running when the host stops would release a disposed semaphore.
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private IConnection? _connection;
    private long? _closedSince;
    private bool _disposed;

    private bool Tls => settings.RabbitMq.Scheme is "amqps" or "rabbitmqs";

    private string Where => $"RabbitMQ at {settings.RabbitMq.Host}:{(settings.RabbitMq.IsDefaultPort ? Tls ? 5671 : 5672 : settings.RabbitMq.Port)}";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (answers, why) = await AskAsync(cancellationToken);
        return answers ? HealthCheckResult.Healthy($"{Where} answers") : HealthCheckResult.Unhealthy($"{Where} does not answer: {why}");
    }

    /// <summary>Whether the broker answers now (the outbox relay asks before it publishes).</summary>
    public async Task<bool> AnswersAsync(CancellationToken cancel) => (await AskAsync(cancel)).Answers;

    private async Task<(bool Answers, string? Why)> AskAsync(CancellationToken cancel)
    {
        if (_connection is { IsOpen: true }) return (true, null);
        await _connecting.WaitAsync(cancel);
        try
        {
            if (_disposed) return (false, "the worker is stopping");
            if (_connection is { } connection)
            {
                if (connection.IsOpen)
                {
                    _closedSince = null;
                    return (true, null);
                }
                // The client reconnects by itself (automatic recovery); until it has, the broker is not there.
                _closedSince ??= Stopwatch.GetTimestamp();
                if (Stopwatch.GetElapsedTime(_closedSince.Value) < GiveUpAfter) return (false, "the connection is closed");
                _connection = null;
                _closedSince = null;
                await connection.DisposeAsync();
            }
            _connection = await new ConnectionFactory
            {
                Uri = ForClient(settings.RabbitMq),
                AutomaticRecoveryEnabled = true,
                NetworkRecoveryInterval = TimeSpan.FromSeconds(1),
                RequestedConnectionTimeout = TimeSpan.FromSeconds(2),
                ClientProvidedName = "nurture-health",
            }.CreateConnectionAsync(cancel);
            return (true, null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The exception's type only: its message could quote the URI, password included.
            return (false, e.GetType().Name);
        }
        finally
        {
            _connecting.Release();
        }
    }

    /// <summary>MassTransit also takes rabbitmq:// and rabbitmqs://; RabbitMQ's client only amqp:// and amqps://.</summary>
    private Uri ForClient(Uri uri) => uri.Scheme is "rabbitmq" or "rabbitmqs"
        ? new UriBuilder(uri) { Scheme = Tls ? "amqps" : "amqp", Port = uri.IsDefaultPort ? -1 : uri.Port }.Uri
        : uri;

    public async ValueTask DisposeAsync()
    {
        await _connecting.WaitAsync();
        try
        {
            _disposed = true;
            if (_connection is not null) await _connection.DisposeAsync();
            _connection = null;
        }
        finally
        {
            _connecting.Release();
        }
    }
}
