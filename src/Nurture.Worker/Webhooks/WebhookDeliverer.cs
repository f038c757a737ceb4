using System.Diagnostics.Metrics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Webhooks;

/// <summary>
/// Sends the hand-off (and whatever else a subscription asks for) to CRMs and chat channels by the Standard Webhooks
/// specification. Each round: new outbox rows become deliveries (one per subscription and message), then due
/// deliveries are posted, the oldest undelivered message of each lead first, so a lead's events arrive in order.
/// A failure (no answer, a timeout, anything but 2xx) is tried again after 5 s, 10 s, 20 s … up to RetryMaxSeconds,
/// until GiveUpHours have passed: a receiver down for an hour gets everything once it is back.
/// </summary>
public sealed partial class WebhookDeliverer(WebhookStore store, WebhookSettings settings, Database database, TimeProvider clock, WebhookMetrics metrics,
    ILogger<WebhookDeliverer> log) : BackgroundService
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        Timeout = TimeSpan.FromSeconds(settings.TimeoutSeconds),
        DefaultRequestHeaders = { UserAgent = { new ProductInfoHeaderValue("Nurture-Webhooks", "1") } },
    };

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Cursors are made before the worker takes events, so a new subscription gets everything from its first start on.
        try
        {
            if (settings.Subscriptions.Count > 0) await store.EnsureCursorsAsync(settings.Subscriptions.Select(s => s.Name), cancellationToken);
        }
        catch (System.Data.Common.DbException e)
        {
            LogRoundFailed(log, e, settings.PollSeconds);
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (settings.Subscriptions.Count == 0) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RoundAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogRoundFailed(log, e, settings.PollSeconds);
            }
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(settings.PollSeconds), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One round: read the outbox into deliveries, send what is due, refresh the gauges.</summary>
    public async Task RoundAsync(CancellationToken cancel)
    {
        const int Batch = 500;
        await store.EnsureCursorsAsync(settings.Subscriptions.Select(s => s.Name), cancel);
        var now = clock.GetUtcNow();
        // On a database server a transaction can commit a lower outbox id after a higher one is visible; reading rows
        // only once they are a few seconds old keeps the cursor from passing one. SQLite has one writer: no such gap.
        var settled = database.Provider == DatabaseProvider.Sqlite ? DateTimeOffset.MaxValue : now.AddSeconds(-5);
        foreach (var subscription in settings.Subscriptions)
        {
            while (await store.EnqueueAsync(subscription, now, settled, Batch, cancel) == Batch && !cancel.IsCancellationRequested)
            {
            }
        }
        // Each pass sends at most one message per lead and subscription; the next pass sends the ones behind it.
        for (var pass = 0; pass < 50; pass++)
        {
            var due = await store.DueAsync(clock.GetUtcNow(), 200, cancel);
            if (due.Count == 0) break;
            var delivered = 0;
            await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancel }, async (d, c) =>
            {
                if (await SendAsync(d, c)) Interlocked.Increment(ref delivered);
            });
            if (delivered == 0) break;
        }
        metrics.Observe(await store.CountByStatusAsync(cancel));
    }

    private async Task<bool> SendAsync(DueDelivery delivery, CancellationToken cancel)
    {
        var now = clock.GetUtcNow();
        if (!await store.ClaimAsync(delivery.Id, now, now.AddSeconds(settings.TimeoutSeconds * 2 + 30), cancel)) return false;
        var subscription = settings.Subscriptions.FirstOrDefault(s => s.Name == delivery.Subscription);
        if (subscription is null)
        {
            await store.MarkFailedAsync(delivery.Id, givenUp: true, null, "the subscription is no longer configured", null, cancel);
            metrics.Attempt("given_up");
            return false;
        }

        var body = $$"""{"type":{{JsonSerializer.Serialize(delivery.Type)}},"timestamp":{{JsonSerializer.Serialize(delivery.WrittenAt.ToUniversalTime())}},"data":{{delivery.Payload}}}""";
        var id = $"msg_{delivery.MessageId:N}";
        var timestamp = now.ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, subscription.Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("webhook-id", id);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", StandardWebhooks.Sign(subscription.Key, id, timestamp, body));

        int? code = null;
        string? error;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                await store.MarkDeliveredAsync(delivery.Id, code.Value, clock.GetUtcNow(), CancellationToken.None);
                metrics.Attempt("delivered");
                return true;
            }
            error = $"HTTP {code}";
        }
        catch (HttpRequestException e)
        {
            error = e.Message;
        }
        catch (TaskCanceledException) when (!cancel.IsCancellationRequested)
        {
            error = $"no answer within {settings.TimeoutSeconds} s";
        }

        var attempts = delivery.Attempts + 1;
        var givenUp = clock.GetUtcNow() - delivery.CreatedAt > TimeSpan.FromHours(settings.GiveUpHours);
        var wait = TimeSpan.FromSeconds(Math.Min(settings.RetryMaxSeconds, settings.RetryBaseSeconds * Math.Pow(2, Math.Min(attempts - 1, 30))));
        await store.MarkFailedAsync(delivery.Id, givenUp, code, error, clock.GetUtcNow() + wait, CancellationToken.None);
        metrics.Attempt(givenUp ? "given_up" : "failed");
        if (givenUp) LogGivenUp(log, delivery.Type, subscription.Name, attempts, error);
        else LogRetrying(log, delivery.Type, subscription.Name, attempts, error, wait.TotalSeconds);
        return false;
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook round failed; trying again in {Seconds} s")]
    private static partial void LogRoundFailed(ILogger log, Exception e, int seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook {Type} to {Subscription} failed (attempt {Attempts}: {Error}); trying again in {Seconds} s")]
    private static partial void LogRetrying(ILogger log, string type, string subscription, int attempts, string? error, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhook {Type} to {Subscription} given up after {Attempts} attempts: {Error}")]
    private static partial void LogGivenUp(ILogger log, string type, string subscription, int attempts, string? error);
}

/// <summary>Webhook deliveries in /metrics: attempts by outcome, and the delivery log by status (delivered, retrying, given up).</summary>
public sealed class WebhookMetrics
{
    private static readonly string[] Statuses = ["pending", "retrying", "delivered", "given_up"];
    private readonly Counter<long> _attempts;
    private volatile IReadOnlyDictionary<string, long> _byStatus = new Dictionary<string, long>();

    public WebhookMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(NurtureMetrics.MeterName);
        _attempts = meter.CreateCounter<long>("nurture.webhook.attempts", "{attempt}", "Webhook posts by outcome: delivered, failed (tried again) or given_up.");
        meter.CreateObservableGauge("nurture.webhook.deliveries", () => Statuses.Select(s => new Measurement<long>(_byStatus.GetValueOrDefault(s), new KeyValuePair<string, object?>("status", s))),
            "{delivery}", "Webhook deliveries in the log by status.");
        foreach (var outcome in new[] { "delivered", "failed", "given_up" }) _attempts.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
    }

    public void Attempt(string outcome) => _attempts.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void Observe(IReadOnlyDictionary<string, long> byStatus) => _byStatus = byStatus;
}
