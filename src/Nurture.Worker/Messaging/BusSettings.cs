using Microsoft.Extensions.Configuration;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Messaging;

public enum BusTransport
{
    /// <summary>MassTransit's in-memory transport: the embedded default, one process, nothing to install.</summary>
    InMemory,
    RabbitMq,
}

/// <summary>Nurture:Bus and ConnectionStrings:RabbitMq. A value that cannot work stops the worker at start-up, naming the setting.</summary>
public sealed record BusSettings
{
    public const string Section = "Nurture:Bus";
    public const string DefaultRabbitMq = "amqp://guest:guest@localhost:5672/";

    public BusTransport Transport { get; init; } = BusTransport.InMemory;
    public Uri RabbitMq { get; init; } = new(DefaultRabbitMq);
    /// <summary>The durable queue every worker instance consumes (competing consumers).</summary>
    public string Queue { get; init; } = "nurture-events";
    /// <summary>The fanout exchange publishers that are not .NET send plain JSON to; bound to <see cref="Queue"/>.</summary>
    public string Exchange { get; init; } = "nurture.events";
    /// <summary>Messages the broker hands a worker before it acknowledges any; also how many are in flight at once.</summary>
    public int Prefetch { get; init; } = 200;
    /// <summary>The most events stored in one transaction: a batch is whatever arrived while the one before it was stored.</summary>
    public int BatchSize { get; init; } = 100;
    /// <summary>Batches stored at the same time by one worker. One keeps every lead's events in arrival order.</summary>
    public int ConcurrentBatches { get; init; } = 1;
    /// <summary>Tries after an error that may pass (database or broker away, deadlock) before the batch goes to the error queue; 0 tries until it passes.</summary>
    public int RetryLimit { get; init; }
    /// <summary>The longest pause between two of those tries.</summary>
    public int RetryMaxSeconds { get; init; } = 30;
    /// <summary>Outbox messages published per round, each confirmed by the broker before the batch is marked published.</summary>
    public int OutboxBatchSize { get; init; } = 500;
    /// <summary>How often the outbox is looked at when nothing has nudged it.</summary>
    public int OutboxPollMs { get; init; } = 1000;
    /// <summary>How long an outbox round waits for the broker's confirms before its unconfirmed rows go back.</summary>
    public int OutboxConfirmSeconds { get; init; } = 30;

    public static BusSettings Load(IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        var defaults = new BusSettings();
        var transportText = section["Transport"];
        var transport = BusTransport.InMemory;
        if (!string.IsNullOrWhiteSpace(transportText) && (!Enum.TryParse(transportText, ignoreCase: true, out transport) || !Enum.IsDefined(transport) || transportText.Any(char.IsDigit)))
        {
            throw new SettingsException($"{Section}:Transport: '{transportText}' is not a transport; use InMemory or RabbitMq.");
        }

        var uriText = configuration.GetConnectionString("RabbitMq");
        var uri = defaults.RabbitMq;
        if (!string.IsNullOrWhiteSpace(uriText))
        {
            if (!Uri.TryCreate(uriText, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("amqp" or "amqps" or "rabbitmq" or "rabbitmqs"))
            {
                throw new SettingsException($"ConnectionStrings:RabbitMq: '{Redact(uriText)}' is not an amqp:// URI (e.g. amqp://user:password@host:5672/vhost).");
            }
            uri = parsed;
        }

        var settings = new BusSettings
        {
            Transport = transport,
            RabbitMq = uri,
            Queue = Name(section, "Queue", defaults.Queue),
            Exchange = Name(section, "Exchange", defaults.Exchange),
            Prefetch = section.WholeNumber("Prefetch", defaults.Prefetch, 1, 10_000),
            BatchSize = section.WholeNumber("BatchSize", defaults.BatchSize, 1, 5_000),
            ConcurrentBatches = section.WholeNumber("ConcurrentBatches", defaults.ConcurrentBatches, 1, 64),
            RetryLimit = section.WholeNumber("RetryLimit", defaults.RetryLimit, 0, 1_000_000),
            RetryMaxSeconds = section.WholeNumber("RetryMaxSeconds", defaults.RetryMaxSeconds, 1, 3_600),
            OutboxBatchSize = section.WholeNumber("OutboxBatchSize", defaults.OutboxBatchSize, 1, 10_000),
            OutboxPollMs = section.WholeNumber("OutboxPollMs", defaults.OutboxPollMs, 10, 600_000),
            OutboxConfirmSeconds = section.WholeNumber("OutboxConfirmSeconds", defaults.OutboxConfirmSeconds, 1, 3_600),
        };
        if (settings.Prefetch < settings.BatchSize)
        {
            throw new SettingsException($"{Section}:Prefetch: {settings.Prefetch} is below {Section}:BatchSize ({settings.BatchSize}); a batch could never fill. Raise Prefetch or lower BatchSize.");
        }
        return settings;
    }

    /// <summary>The broker address without its password, for logs and messages.</summary>
    public string Describe() => Transport == BusTransport.InMemory ? "in-memory bus" : $"RabbitMQ {Redact(RabbitMq.ToString())}, queue {Queue}, exchange {Exchange}";

    private static string Redact(string uri) =>
        Uri.TryCreate(uri, UriKind.Absolute, out var u) && u.UserInfo.Contains(':', StringComparison.Ordinal) ? uri.Replace(u.UserInfo, u.UserInfo.Split(':')[0] + ":***", StringComparison.Ordinal) : uri;

    private static string Name(IConfigurationSection section, string key, string fallback)
    {
        var value = section[key];
        if (value is null) return fallback;
        if (string.IsNullOrWhiteSpace(value) || value.Length > 200 || value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            throw new SettingsException($"{Section}:{key}: '{value}' is not a usable name (1 to 200 characters, no spaces).");
        }
        return value;
    }
}
