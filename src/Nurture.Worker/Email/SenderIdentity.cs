using System.Text.Encodings.Web;
using Microsoft.Extensions.Configuration;
using MimeKit;
using Nurture.Core;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Email;

/// <summary>
/// Who sends the nurture emails (Nurture:Email): the Reply-To, a sender name per track, and the footer with the
/// company's postal address and Impressum link that commercial email needs in the EU (and CAN-SPAM in the US).
/// Required when sending over SMTP; the pickup folder (a trial run) works without.
/// </summary>
public sealed record SenderIdentity
{
    // Escapes what HTML needs and leaves umlauts readable (ß stays ß).
    private static readonly HtmlEncoder Html = HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All);

    public MailboxAddress? ReplyTo { get; init; }
    /// <summary>The From display name per track name; tracks not named use the From setting's name.</summary>
    public IReadOnlyDictionary<string, string> SenderNames { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
    public string? Company { get; init; }
    /// <summary>The postal address, lines separated by commas or newlines.</summary>
    public string? PostalAddress { get; init; }
    public Uri? ImpressumUrl { get; init; }

    public bool HasFooter => Company is not null || PostalAddress is not null || ImpressumUrl is not null;

    public static SenderIdentity Load(IConfiguration configuration, EmailSettings email, Definition definition)
    {
        const string S = EmailSettings.Section;
        var s = configuration.GetSection(S);
        MailboxAddress? replyTo = null;
        if (s["ReplyTo"] is { Length: > 0 } replyText && !MailboxAddress.TryParse(replyText, out replyTo))
        {
            throw new SettingsException($"{S}:ReplyTo: '{replyText}' is not an address; write it as \"Name <address@domain>\" or \"address@domain\".");
        }
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in s.GetSection("SenderNames").GetChildren())
        {
            if (!definition.Nurture.Tracks.Any(t => string.Equals(t.Name, entry.Key, StringComparison.OrdinalIgnoreCase)))
            {
                throw new SettingsException($"{S}:SenderNames:{entry.Key}: the definition has no track '{entry.Key}' (tracks: {string.Join(", ", definition.Nurture.Tracks.Select(t => t.Name))}).");
            }
            if (entry.Value is { Length: > 0 } name) names[entry.Key] = OneLine(name);
        }
        Uri? impressum = null;
        if (s["Footer:ImpressumUrl"] is { Length: > 0 } urlText && (!Uri.TryCreate(urlText, UriKind.Absolute, out impressum) || impressum.Scheme is not ("http" or "https")))
        {
            throw new SettingsException($"{S}:Footer:ImpressumUrl: '{urlText}' is not an http(s) URL.");
        }
        var identity = new SenderIdentity
        {
            ReplyTo = replyTo,
            SenderNames = names,
            Company = s["Footer:Company"] is { Length: > 0 } company ? OneLine(company) : null,
            PostalAddress = s["Footer:Address"] is { Length: > 0 } address ? address.Trim() : null,
            ImpressumUrl = impressum,
        };
        if (email.UsesSmtp)
        {
            var missing = new (string Key, object? Value)[] { ("ReplyTo", identity.ReplyTo), ("Footer:Company", identity.Company), ("Footer:Address", identity.PostalAddress), ("Footer:ImpressumUrl", identity.ImpressumUrl) }
                .Where(x => x.Value is null).Select(x => $"{S}:{x.Key}").ToList();
            if (missing.Count > 0)
            {
                throw new SettingsException($"{string.Join(", ", missing)}: required when sending over SMTP: commercial email must say who sends it, where replies go and the sender's postal address (Impressum).");
            }
        }
        return identity;
    }

    /// <summary>The From address of a track's emails: the track's sender name, else the From setting's.</summary>
    public MailboxAddress FromFor(string track, MailboxAddress from) =>
        SenderNames.TryGetValue(track, out var name) ? new MailboxAddress(name, from.Address) : from;

    public string FooterText(string language)
    {
        if (!HasFooter) return "";
        var lines = new List<string>();
        if (Company is not null) lines.Add(Company);
        if (PostalAddress is not null) lines.AddRange(AddressLines());
        if (ImpressumUrl is not null) lines.Add($"{(language == "de" ? "Impressum" : "Legal notice (Impressum)")}: {ImpressumUrl}");
        return string.Join('\n', lines);
    }

    public string FooterHtml(string language)
    {
        if (!HasFooter) return "";
        var parts = new List<string>();
        if (Company is not null) parts.Add($"<strong>{Html.Encode(Company)}</strong>");
        if (PostalAddress is not null) parts.Add(string.Join("<br>", AddressLines().Select(l => Html.Encode(l))));
        if (ImpressumUrl is not null) parts.Add($"""<a href="{Html.Encode(ImpressumUrl.ToString())}" style="color:#555555;">{(language == "de" ? "Impressum" : "Legal notice (Impressum)")}</a>""");
        return $"""<div class="nurture-footer" style="max-width:600px;margin:0 auto;padding:12px;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:1.5;color:#777777;text-align:center;">{string.Join("<br>", parts)}</div>""";
    }

    private string[] AddressLines() =>
        PostalAddress!.Split(['\n', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
