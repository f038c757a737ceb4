using Microsoft.Extensions.Configuration;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Metrics;

/// <summary>Nurture:Metrics: how often the funnel gauges are read from the database, and an optional OTLP endpoint.</summary>
public sealed record MetricsSettings
{
    public const string Section = "Nurture:Metrics";

    public int RefreshSeconds { get; init; } = 15;
    /// <summary>When set, metrics also go to this OpenTelemetry collector (OTLP over gRPC or HTTP/protobuf), besides /metrics.</summary>
    public Uri? OtlpEndpoint { get; init; }

    public static MetricsSettings Load(IConfiguration configuration)
    {
        var s = configuration.GetSection(Section);
        var seconds = s.WholeNumber("RefreshSeconds", new MetricsSettings().RefreshSeconds, 1, 3600);
        Uri? otlp = null;
        if (s["OtlpEndpoint"] is { Length: > 0 } text && (!Uri.TryCreate(text, UriKind.Absolute, out otlp) || otlp.Scheme is not ("http" or "https")))
        {
            throw new SettingsException($"{Section}:OtlpEndpoint: '{text}' is not an http(s) URL, e.g. http://localhost:4317.");
        }
        return new MetricsSettings { RefreshSeconds = seconds, OtlpEndpoint = otlp };
    }
}
