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

    private string Where => $"RabbitMQ at {settings.RabbitMq.Host}:{(settings.RabbitMq.IsDefaultPort ? 5672 : settings.RabbitMq.Port)}";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var (answers, why) = await AskAsync(cancellationToken);
        return answers ? HealthCheckResult.Healthy($"{Where} answers") : HealthCheckResult.Unhealthy($"{Where} does not answer: {why}");
    }

    /// <summary>Whether the broker answers now (the outbox relay asks before it publishes).</summary>
    public async Task<bool> AnswersAsync(CancellationToken cancel) => (await AskAsync(cancel)).Answers;

    private async Task<(bool Answers, string? Why)> AskAsync(CancellationToken cancel)
    {
        // The client reconnects by itself (automatic recovery); until it has, the broker is not there.
        if (_connection is { } open) return open.IsOpen ? (true, null) : (false, "the connection is closed");
        await _connecting.WaitAsync(cancel);
        try
        {
            _connection ??= await new ConnectionFactory
            {
                Uri = settings.RabbitMq,
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

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null) await _connection.DisposeAsync();
        _connecting.Dispose();
    }
}
