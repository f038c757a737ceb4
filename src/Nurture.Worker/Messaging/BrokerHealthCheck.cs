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
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private IConnection? _connection;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var where = $"RabbitMQ at {settings.RabbitMq.Host}:{(settings.RabbitMq.IsDefaultPort ? 5672 : settings.RabbitMq.Port)}";
        if (_connection is { } open)
        {
            // The client reconnects by itself (automatic recovery); until it has, the broker is not there.
            return open.IsOpen ? HealthCheckResult.Healthy($"{where} answers") : HealthCheckResult.Unhealthy($"{where} does not answer: the connection is closed");
        }
        await _connecting.WaitAsync(cancellationToken);
        try
        {
            _connection ??= await new ConnectionFactory
            {
                Uri = settings.RabbitMq,
                AutomaticRecoveryEnabled = true,
                NetworkRecoveryInterval = TimeSpan.FromSeconds(1),
                RequestedConnectionTimeout = TimeSpan.FromSeconds(2),
                ClientProvidedName = "nurture-health",
            }.CreateConnectionAsync(cancellationToken);
            return HealthCheckResult.Healthy($"{where} answers");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The message names the host and the failure, never the URI's password.
            return HealthCheckResult.Unhealthy($"{where} does not answer: {e.GetType().Name}");
        }
        finally
        {
            _connecting.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null) await _connection.DisposeAsync();
        _connecting.Dispose();
    }
}
