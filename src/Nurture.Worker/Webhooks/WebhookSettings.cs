using Microsoft.Extensions.Configuration;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Webhooks;

/// <summary>One receiver: where to post, which outgoing events it wants, and the secret that signs them (Standard Webhooks).</summary>
public sealed record WebhookSubscription(string Name, Uri Url, IReadOnlyList<string> Events, byte[] Key);

/// <summary>
/// Nurture:Webhooks. Each subscription gets the outgoing events it names, signed by the Standard Webhooks
/// specification, with retries and exponential backoff until it answers 2xx or <see cref="GiveUpHours"/> pass.
/// </summary>
public sealed record WebhookSettings
{
    public const string Section = "Nurture:Webhooks";

    /// <summary>What a subscription may ask for: the messages Nurture publishes.</summary>
    public static readonly IReadOnlyList<string> EventTypes =
        ["LeadHandedToSales", "LeadStageChanged", "HandOffSlaBreached", "MqlValueCalculated", "LeadScored", "NurtureEmailSent", "NurtureEmailScheduled"];

    public IReadOnlyList<WebhookSubscription> Subscriptions { get; init; } = [];
    /// <summary>How often the deliverer looks for new outbox rows and due retries.</summary>
    public int PollSeconds { get; init; } = 2;
    /// <summary>The wait after the first failed attempt; it doubles with each further one, up to <see cref="RetryMaxSeconds"/>.</summary>
    public int RetryBaseSeconds { get; init; } = 5;
    public int RetryMaxSeconds { get; init; } = 600;
    /// <summary>A delivery not accepted this long after its message was written is given up (kept in the log as given_up).</summary>
    public int GiveUpHours { get; init; } = 72;
    public int TimeoutSeconds { get; init; } = 10;

    public static WebhookSettings Load(IConfiguration configuration)
    {
        var s = configuration.GetSection(Section);
        var d = new WebhookSettings();
        var subscriptions = new List<WebhookSubscription>();
        foreach (var (i, entry) in s.GetSection("Subscriptions").GetChildren().Index())
        {
            var at = $"{Section}:Subscriptions:{i}";
            var name = entry["Name"]?.Trim() ?? "";
            if (name.Length is 0 or > 64 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            {
                throw new SettingsException($"{at}:Name: '{name}' must be 1 to 64 letters, digits, '-' or '_' (it names the subscription in the delivery log).");
            }
            if (subscriptions.Any(x => string.Equals(x.Name, name, StringComparison.OrdinalIgnoreCase))) throw new SettingsException($"{at}:Name: '{name}' is used by another subscription.");
            if (!Uri.TryCreate(entry["Url"], UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                throw new SettingsException($"{at}:Url: '{entry["Url"]}' is not an http(s) URL.");
            }
            var events = entry.GetSection("Events").Get<string[]>() ?? [];
            if (events.Length == 0) throw new SettingsException($"{at}:Events: is empty; name the events this receiver wants ({string.Join(", ", EventTypes)}).");
            var known = new List<string>();
            foreach (var (j, e) in events.Index())
            {
                known.Add(EventTypes.FirstOrDefault(t => string.Equals(t, e?.Trim(), StringComparison.OrdinalIgnoreCase))
                    ?? throw new SettingsException($"{at}:Events:{j}: '{e}' is not an outgoing event (known: {string.Join(", ", EventTypes)})."));
            }
            subscriptions.Add(new WebhookSubscription(name, url, known.Distinct().ToList(), Key($"{at}:Secret", entry["Secret"])));
        }
        return new WebhookSettings
        {
            Subscriptions = subscriptions,
            PollSeconds = s.WholeNumber("PollSeconds", d.PollSeconds, 1, 3600),
            RetryBaseSeconds = s.WholeNumber("RetryBaseSeconds", d.RetryBaseSeconds, 1, 3600),
            RetryMaxSeconds = s.WholeNumber("RetryMaxSeconds", d.RetryMaxSeconds, 1, 86_400),
            GiveUpHours = s.WholeNumber("GiveUpHours", d.GiveUpHours, 1, 24 * 30),
            TimeoutSeconds = s.WholeNumber("TimeoutSeconds", d.TimeoutSeconds, 1, 300),
        };
    }

    /// <summary>A Standard Webhooks secret: "whsec_" and base64 of 24 to 64 random bytes.</summary>
    private static byte[] Key(string setting, string? secret)
    {
        const string Prefix = "whsec_";
        if (string.IsNullOrWhiteSpace(secret)) throw new SettingsException($"{setting}: required; give it in the environment ({setting.Replace(":", "__", StringComparison.Ordinal)}) as whsec_ and base64 of 24 to 64 random bytes (e.g. `echo whsec_$(openssl rand -base64 32)`).");
        if (!secret.StartsWith(Prefix, StringComparison.Ordinal)) throw new SettingsException($"{setting}: must start with '{Prefix}' (the Standard Webhooks form).");
        try
        {
            var key = Convert.FromBase64String(secret[Prefix.Length..]);
            return key.Length is >= 24 and <= 64 ? key : throw new SettingsException($"{setting}: {key.Length} bytes after '{Prefix}'; use 24 to 64 random bytes.");
        }
        catch (FormatException)
        {
            throw new SettingsException($"{setting}: what follows '{Prefix}' is not base64.");
        }
    }
}
