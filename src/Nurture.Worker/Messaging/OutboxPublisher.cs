using MassTransit;
using Microsoft.Extensions.Logging;

namespace Nurture.Worker.Messaging;

/// <summary>
/// The outbox relay's own connection to RabbitMQ, a MassTransit bus that only publishes (with publisher confirms),
/// apart from the bus that consumes. After a broker restart, publishes on a recovered connection can wait for ever
/// (rabbitmq-dotnet-client #1930). The relay then drops this bus and the next round publishes on a new one, while the
/// consumer never stops. Messages go to the same exchanges: both buses name them after the message types.
/// </summary>
public sealed partial class OutboxPublisher(BusSettings settings, ILogger<OutboxPublisher> log) : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private IBusControl? _bus;

    /// <summary>The bus to publish on, started on first use or after <see cref="Replace"/>.</summary>
    public async Task<IPublishEndpoint> BusAsync(CancellationToken cancel)
    {
        if (Volatile.Read(ref _bus) is { } started) return started;
        await _gate.WaitAsync(cancel);
        try
        {
            if (_bus is { } bus) return bus;
            var created = MassTransit.Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(settings.RabbitMq, h => h.PublisherConfirmation = true));
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(StartTimeout);
            try
            {
                await created.StartAsync(timeout.Token);
            }
            catch
            {
                _ = StopAsync(created);
                throw;
            }
            Volatile.Write(ref _bus, created);
            return created;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Drops the bus (its stop may hang on the same stuck channel, so it is not waited for); the next round starts a new one.</summary>
    public void Replace()
    {
        if (Interlocked.Exchange(ref _bus, null) is not { } old) return;
        LogReplaced(log);
        _ = StopAsync(old);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _bus, null) is { } bus) await StopAsync(bus);
    }

    private async Task StopAsync(IBusControl bus)
    {
        try
        {
            using var timeout = new CancellationTokenSource(StopTimeout);
            await bus.StopAsync(timeout.Token);
        }
        catch (Exception e)
        {
            LogStopFailed(log, e);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The outbox's publishes timed out while RabbitMQ answers; publishing goes on over a new connection")]
    private static partial void LogReplaced(ILogger logger);

    [LoggerMessage(Level = LogLevel.Debug, Message = "The outbox's old publishing bus did not stop cleanly")]
    private static partial void LogStopFailed(ILogger logger, Exception e);
}
