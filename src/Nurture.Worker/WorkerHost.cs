using System.Text.Json;
using Dapper;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.Logging;
using System.Text.Json.Serialization;
using Nurture.Worker.Api;
using Nurture.Worker.Cli;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Nurture.Worker.Email;
using Nurture.Worker.Leads;
using Nurture.Worker.Scheduling;
using Nurture.Worker.Messaging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;
using Nurture.Worker.Webhooks;

namespace Nurture.Worker;

/// <summary>
/// The long-running worker: consumes lead events from the bus, stores decisions with their outbox, publishes the outbox,
/// and answers health checks over HTTP. Settings come from appsettings.json in the working folder, the environment and
/// the command line (ASP.NET's rules); anything that cannot work stops it at start-up, naming the setting.
/// </summary>
public static class WorkerHost
{
    public const string DefaultUrl = "http://localhost:5080";

    public static WebApplication Build(string[] args, Action<IConfigurationBuilder>? configure = null, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = Directory.GetCurrentDirectory() });
        // Quieter defaults that appsettings.json or the environment can still override.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                ["Logging:LogLevel:MassTransit"] = "Warning",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
                ["Logging:LogLevel:Quartz"] = "Warning",
                // A refused API key is answered (401 problem details); it is not news for the log.
                ["Logging:LogLevel:Nurture.Worker.Api.ApiKeyAuthentication"] = "Warning",
                // Start-up failures are reported by the command in one line with what to do; the host's stack trace only repeats them.
                ["Logging:LogLevel:Microsoft.Extensions.Hosting.Internal.Host"] = "Critical",
            },
        });
        configure?.Invoke(builder.Configuration);
        if (string.IsNullOrWhiteSpace(builder.Configuration[WebHostDefaults.ServerUrlsKey])) builder.WebHost.UseUrls(DefaultUrl);

        var database = AddWorker(builder.Services, builder.Configuration);
        builder.Services.AddSingleton(ApiSettings.Load(builder.Configuration, database.DataFolder));
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Converters.Add(new JsonStringEnumConverter()));
        // Every error answer is RFC 9457 problem details; the API key is an authentication scheme; /openapi/v1.json describes it all.
        builder.Services.AddProblemDetails();
        ApiKeyAuthentication.AddTo(builder.Services);
        builder.Services.AddNurtureOpenApi();
        services?.Invoke(builder.Services);
        // MassTransit adds its bus check with the "ready" tag; the database is the other half of ready.
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: ["ready"]);

        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealth });
        // Ready means able to take events now: a bus or database that is only Degraded (reconnecting) answers 503 too.
        app.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = c => c.Tags.Contains("ready"),
            ResponseWriter = WriteHealth,
            ResultStatusCodes = { [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable },
        });
        app.MapUnsubscribe();
        app.MapClickTracking();
        app.MapWebhookApi();
        app.MapNurtureApi();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi("/openapi/{documentName}.json");
        return app;
    }

    /// <summary>
    /// What the worker is made of, apart from HTTP, from its settings; each setting that cannot work (and each template
    /// that is missing or broken) stops it here, named.
    /// </summary>
    internal static Database AddWorker(IServiceCollection services, IConfiguration configuration)
    {
        var definition = DefinitionSettings.Load(configuration);
        var database = Settings.Database(configuration);
        var bus = BusSettings.Load(configuration);
        var email = EmailSettings.Load(configuration);
        var templates = NurtureTemplates.Load(definition, email);
        var schedule = ScheduleSettings.Load(configuration);
        var metrics = MetricsSettings.Load(configuration);
        if (database.DataFolder is null)
        {
            // Workers sharing a database server must share their secrets; say everything missing at once.
            var missing = new[] { ($"{EmailSettings.Section}:UnsubscribeKey", email.UnsubscribeKey), ($"{ApiSettings.Section}:Key", configuration[$"{ApiSettings.Section}:Key"]) }
                .Where(s => string.IsNullOrEmpty(s.Item2)).Select(s => s.Item1).ToList();
            if (missing.Count > 0)
            {
                throw new SettingsException($"{string.Join(" and ", missing)}: required when the database is a server: every worker must use the same secrets. Set them in the environment ({string.Join(", ", missing.Select(m => m.Replace(":", "__", StringComparison.Ordinal)))}).");
            }
        }
        var tokens = UnsubscribeTokens.From(email, database.DataFolder);
        MailKit.Telemetry.SmtpClient.Configure();
        services.AddOpenTelemetry().ConfigureResource(r => r.AddService("nurture")).WithMetrics(m =>
        {
            // Nurture's own meter, MassTransit's and MailKit's, scraped at /metrics; OTLP as well when an endpoint is set.
            m.AddMeter(NurtureMetrics.MeterName, "MassTransit", MailKit.Telemetry.SmtpClient.MeterName);
            // MassTransit times in milliseconds, which Prometheus conventions (and promtool) reject; its counters stay.
            m.AddView(i => i.Meter.Name == "MassTransit" && i.Unit == "ms" ? MetricStreamConfiguration.Drop : null);
            m.AddPrometheusExporter();
            if (metrics.OtlpEndpoint is { } otlp) m.AddOtlpExporter(o => o.Endpoint = otlp);
        });
        services.AddSingleton(metrics).AddHostedService<FunnelRefresher>();
        services.AddLeadEvents(configuration);
        services
            .AddMetrics()
            .AddSingleton(definition)
            .AddSingleton(database)
            .AddSingleton<LeadStore>()
            .AddSingleton(TimeProvider.System)
            .AddSingleton<NurtureMetrics>()
            .AddSingleton(email)
            .AddSingleton(templates)
            .AddSingleton(tokens)
            .AddSingleton(sp => NurtureMailer.For(email, sp.GetRequiredService<ILoggerFactory>()))
            .AddSingleton(sp => new PublicAddress(email.PublicUrl, sp.GetService<IServer>()))
            .AddSingleton(SenderIdentity.Load(configuration, email, definition))
            .AddSingleton(ClickSettings.Load(configuration))
            .AddSingleton(ClickTokens.From(email, database.DataFolder))
            .AddSingleton<MailComposer>()
            .AddSingleton<NurtureDispatch>()
            .AddSingleton(WebhookSettings.Load(configuration)).AddSingleton<WebhookStore>().AddSingleton<WebhookMetrics>().AddHostedService<WebhookDeliverer>()
            .AddNurtureBus(bus)
            .AddNurtureSchedule(schedule, email);
        return database;
    }

    /// <summary>Migrates the database, starts, says where everything is, and runs until stopped (Ctrl+C).</summary>
    public static async Task<int> RunAsync(string[] args, FileInfo? feed, CancellationToken cancel)
    {
        if (feed is { Exists: false }) throw new FileNotFoundException($"--feed: the file '{feed.FullName}' does not exist.", feed.FullName);
        await using var app = Build(args);
        var database = app.Services.GetRequiredService<Database>();
        database.Migrate();
        await app.StartAsync(cancel);
        var bus = app.Services.GetRequiredService<BusSettings>();
        var definition = app.Services.GetRequiredService<Core.Definition>();
        // Through the logger, so Logging__Console__FormatterName=json gives JSON only.
        WorkerLog.Running(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Nurture.Worker"), database.Describe(), bus.Describe(), $"{definition.Name} {definition.Version}",
            app.Services.GetRequiredService<EmailSettings>().Describe(), $"{app.Services.GetRequiredService<PublicAddress>().BaseUrl}unsubscribe/…",
            string.Join(", ", app.Urls.Select(u => u + "/dashboard")), string.Join(", ", app.Urls.Select(u => u + "/metrics")),
            $"POST {app.Urls.FirstOrDefault()}/api/events with X-Api-Key {ApiKeyHint(app.Services.GetRequiredService<ApiSettings>())}",
            string.Join(", ", app.Urls.Select(u => u + "/health/ready")), string.Join(", ", app.Urls.Select(u => u + "/openapi/v1.json")));
        if (feed is not null) await FeedAsync(app, feed, cancel);
        await app.WaitForShutdownAsync(cancel);
        return 0;
    }

    /// <summary>How far `--feed` may run ahead of the worker on the in-memory bus.</summary>
    internal const int FeedAhead = 5_000;

    /// <summary>
    /// Publishes a file of events onto the bus the worker consumes, as a publisher would: the embedded default's way in.
    /// On the in-memory bus it waits until this worker has handled them and prints the funnel read back from the database.
    /// </summary>
    private static async Task FeedAsync(WebApplication app, FileInfo file, CancellationToken cancel)
    {
        using var reader = ReplayCommand.OpenEvents(file);
        var store = app.Services.GetRequiredService<LeadStore>();
        var clock = app.Services.GetRequiredService<TimeProvider>();
        var metrics = app.Services.GetRequiredService<NurtureMetrics>();
        var before = metrics.Handled;
        var bus = app.Services.GetRequiredService<MassTransit.IBus>();
        // Published as the file is read, 500 at a time, never read whole first. RabbitMQ confirms each 500 before the next;
        // the in-memory bus takes a message as soon as it is queued, so there the feed stays at most FeedAhead events ahead
        // of what the worker has handled: the memory it takes is that, whatever the file's size.
        var inMemory = app.Services.GetRequiredService<BusSettings>().Transport == BusTransport.InMemory;
        int published = 0, rejected = 0;
        var chunk = new List<Task>(500);
        await foreach (var line in ReplayCommand.ReadLinesAsync(reader, cancel))
        {
            if (line.Event is { } e)
            {
                chunk.Add(bus.Publish(e, e.GetType(), cancel));
                published++;
            }
            else
            {
                rejected++;
                await store.RecordRejectedAsync(file.Name, $"line {line.Number}: {line.Error}", "", clock.GetUtcNow(), cancel);
            }
            if (chunk.Count < 500) continue;
            await Task.WhenAll(chunk);
            chunk.Clear();
            while (inMemory && published - (metrics.Handled - before) > FeedAhead) await Task.Delay(20, cancel);
        }
        await Task.WhenAll(chunk);
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Nurture.Worker");
        WorkerLog.Fed(log, published, file.Name, rejected);
        if (!inMemory) return;

        var deadline = clock.GetUtcNow().AddMinutes(5);
        while (metrics.Handled - before < published && clock.GetUtcNow() < deadline) await Task.Delay(100, cancel);
        var funnel = await store.ReadFunnelAsync(cancel);
        WorkerLog.Handled(log, metrics.Handled - before, string.Join(" → ", funnel.Select(f => $"{f.Stage} {f.Reached}")));
    }

    private static string ApiKeyHint(ApiSettings api) =>
        api.KeyGenerated ? $"from {Path.GetFullPath(api.KeyFile)} (set Nurture:Api:Key to choose one)" : "(Nurture:Api:Key)";

    private static Task WriteHealth(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description ?? e.Value.Exception?.Message }),
        }));
    }
}

/// <summary>What the worker says at start-up and about a fed file, as log lines (plain or JSON, as Logging:Console says).</summary>
internal static partial class WorkerLog
{
    [LoggerMessage(1, LogLevel.Information, """
        Nurture worker running. Ctrl+C stops it.
          database:   {Database}
          bus:        {Bus}
          definition: {Definition}
          email:      {Email}
          unsubscribe links: {Unsubscribe}
          dashboard:  {Dashboard}
          metrics:    {Metrics}
          API:        {Api}
          health:     {Health}
          OpenAPI:    {OpenApi}
        """)]
    public static partial void Running(ILogger log, string database, string bus, string definition, string email, string unsubscribe, string dashboard, string metrics, string api, string health, string openApi);

    [LoggerMessage(2, LogLevel.Information, "Fed {Events} events from {File} onto the bus ({Rejected} unreadable lines kept in rejected_events).")]
    public static partial void Fed(ILogger log, int events, string file, int rejected);

    [LoggerMessage(3, LogLevel.Information, "Handled {Handled} of them. Funnel (reached): {Funnel}")]
    public static partial void Handled(ILogger log, long handled, string funnel);
}

/// <summary>Ready only when the database answers.</summary>
public sealed class DatabaseHealthCheck(Database database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            await connection.ExecuteScalarAsync<int>(new CommandDefinition("SELECT 1", cancellationToken: cancellationToken));
            return HealthCheckResult.Healthy($"{database.Provider} answers");
        }
        catch (Exception e)
        {
            return HealthCheckResult.Unhealthy($"{database.Provider} does not answer: {e.Message}", e);
        }
    }
}
