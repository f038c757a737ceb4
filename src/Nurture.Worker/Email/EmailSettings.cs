using System.Globalization;
using Microsoft.Extensions.Configuration;
using MimeKit;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Email;

/// <summary>
/// Nurture:Email. With no SMTP host, emails are written as .eml files to the pickup folder (the embedded default).
/// A value that cannot work stops the worker at start-up, naming the setting.
/// </summary>
public sealed record EmailSettings
{
    public const string Section = "Nurture:Email";

    public MailboxAddress From { get; init; } = new("Nurture", "nurture@localhost");
    /// <summary>Folder for .eml files when no SMTP host is set; relative to the working folder.</summary>
    public string PickupDirectory { get; init; } = "mail";
    public string? SmtpHost { get; init; }
    public int SmtpPort { get; init; } = 587;
    public bool UseStartTls { get; init; } = true;
    public string? SmtpUser { get; init; }
    public string? SmtpPassword { get; init; }
    /// <summary>SMTP connections kept open and used at once (one message on its way on each); two suit one worker on a small machine.</summary>
    public int Connections { get; init; } = 2;
    /// <summary>While the SMTP server cannot be used it is probed after 1 s, 2 s, 4 s … up to this many seconds apart; sending resumes when it answers.</summary>
    public int ProbeMaxSeconds { get; init; } = 120;
    /// <summary>Folder of Liquid templates ({template}.{language}.html.liquid and .txt.liquid); the built-in ones when unset.</summary>
    public string Templates { get; init; } = Path.Combine(AppContext.BaseDirectory, "Templates");
    public IReadOnlyList<string> Languages { get; init; } = ["de", "en"];
    /// <summary>For leads whose language has no templates.</summary>
    public string DefaultLanguage { get; init; } = "en";
    /// <summary>Where recipients reach this worker's unsubscribe endpoint (https in production: RFC 8058 asks for it).</summary>
    public Uri? PublicUrl { get; init; }
    /// <summary>Secret that signs unsubscribe links; when unset a key file beside the database keeps one across restarts.</summary>
    public string? UnsubscribeKey { get; init; }
    public string UnsubscribeKeyFile { get; init; } = "nurture-unsubscribe.key";
    /// <summary>How often the dispatch job looks for due steps.</summary>
    public int DispatchSeconds { get; init; } = 10;
    /// <summary>Steps claimed at once (the next batch is claimed while this one goes out), and how long a claim holds before another worker may take it over.</summary>
    public int BatchSize { get; init; } = 50;
    public int LeaseSeconds { get; init; } = 300;
    /// <summary>Sends tried per step before a temporary (4xx) failure becomes final.</summary>
    public int MaxAttempts { get; init; } = 6;

    public bool UsesSmtp => !string.IsNullOrWhiteSpace(SmtpHost);

    public string Describe() => UsesSmtp
        ? $"SMTP {SmtpHost}:{SmtpPort}{(UseStartTls ? " (STARTTLS)" : "")}, {Connections} connection(s), from {From}"
        : $"folder {Path.GetFullPath(PickupDirectory)} (.eml files; set {Section}:Smtp:Host to send), from {From}";

    public static EmailSettings Load(IConfiguration configuration)
    {
        var s = configuration.GetSection(Section);
        var d = new EmailSettings();
        MailboxAddress from = d.From;
        if (s["From"] is { } fromText && !MailboxAddress.TryParse(fromText, out from!))
        {
            throw new SettingsException($"{Section}:From: '{fromText}' is not an address; write it as \"Name <address@domain>\" or \"address@domain\".");
        }
        var languages = s.GetSection("Languages").Get<string[]>() is { Length: > 0 } l ? l.Select(x => x.Trim().ToLowerInvariant()).ToArray() : [.. d.Languages];
        var defaultLanguage = (s["DefaultLanguage"] ?? d.DefaultLanguage).Trim().ToLowerInvariant();
        if (!languages.Contains(defaultLanguage))
        {
            throw new SettingsException($"{Section}:DefaultLanguage: '{defaultLanguage}' is not one of {Section}:Languages ({string.Join(", ", languages)}).");
        }
        Uri? publicUrl = null;
        if (s["PublicUrl"] is { Length: > 0 } urlText && (!Uri.TryCreate(urlText, UriKind.Absolute, out publicUrl) || publicUrl.Scheme is not ("http" or "https")))
        {
            throw new SettingsException($"{Section}:PublicUrl: '{urlText}' is not an http(s) URL.");
        }
        var key = s["UnsubscribeKey"];
        if (key is { Length: > 0 and < 32 }) throw new SettingsException($"{Section}:UnsubscribeKey: {key.Length} characters is too short to sign links; use at least 32 random characters.");

        return new EmailSettings
        {
            From = from,
            PickupDirectory = s["PickupDirectory"] is { Length: > 0 } dir ? dir : d.PickupDirectory,
            SmtpHost = s["Smtp:Host"] is { Length: > 0 } host ? host : null,
            SmtpPort = s.WholeNumber("Smtp:Port", d.SmtpPort, 1, 65535),
            UseStartTls = s.Flag("Smtp:UseStartTls", d.UseStartTls),
            SmtpUser = s["Smtp:User"] is { Length: > 0 } user ? user : null,
            SmtpPassword = s["Smtp:Password"] is { Length: > 0 } password ? password : null,
            Connections = s.WholeNumber("Smtp:Connections", d.Connections, 1, 32),
            ProbeMaxSeconds = s.WholeNumber("Smtp:ProbeMaxSeconds", d.ProbeMaxSeconds, 1, 3600),
            Templates = s["Templates"] is { Length: > 0 } templates ? Path.GetFullPath(templates) : d.Templates,
            Languages = languages,
            DefaultLanguage = defaultLanguage,
            PublicUrl = publicUrl,
            UnsubscribeKey = key is { Length: > 0 } ? key : null,
            UnsubscribeKeyFile = s["UnsubscribeKeyFile"] is { Length: > 0 } file ? file : d.UnsubscribeKeyFile,
            DispatchSeconds = s.WholeNumber("DispatchSeconds", d.DispatchSeconds, 1, 3600),
            BatchSize = s.WholeNumber("BatchSize", d.BatchSize, 1, 1000),
            LeaseSeconds = s.WholeNumber("LeaseSeconds", d.LeaseSeconds, 10, 2_592_000),
            MaxAttempts = s.WholeNumber("MaxAttempts", d.MaxAttempts, 1, 50),
        };
    }
}
