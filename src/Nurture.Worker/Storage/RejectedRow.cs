using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Nurture.Worker.Storage;

/// <summary>
/// A rejected_events row as it is stored: texts every database takes (a NUL or other control character is written as
/// its JSON escape), the payload cut to a size, the whole payload's SHA-256 and length in bytes, and the lead it names.
/// </summary>
internal sealed partial record RejectedRow(string Reason, string Payload, string? LeadId, string Sha256, long Length)
{
    public const int MaxReason = 2000;

    public static RejectedRow Of(string reason, string payload, int maxPayloadBytes)
    {
        var bytes = Encoding.UTF8.GetBytes(payload);
        var storable = Storable(payload);
        var kept = Encoding.UTF8.GetByteCount(storable) <= maxPayloadBytes ? storable : Cut(storable, maxPayloadBytes);
        var reasonText = Storable(reason);
        return new RejectedRow(reasonText.Length <= MaxReason ? reasonText : reasonText[..MaxReason], kept, LeadIdOf(payload),
            Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes.Length);
    }

    /// <summary>Control characters (NUL among them: PostgreSQL cannot store it) as their \u escapes.</summary>
    public static string Storable(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\0', '\u001f') && !text.Contains('\u007f', StringComparison.Ordinal)) return text;
        var b = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (c is '\n' or '\r' or '\t' || c >= ' ' && c != '\u007f') b.Append(c);
            else b.Append(@"\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
        }
        return b.ToString();
    }

    /// <summary>The first <paramref name="maxBytes"/> bytes of UTF-8, never splitting a character.</summary>
    private static string Cut(string text, int maxBytes)
    {
        var encoder = Encoding.UTF8.GetEncoder();
        var buffer = new byte[maxBytes];
        encoder.Convert(text.AsSpan(), buffer, flush: true, out var charsUsed, out _, out _);
        if (charsUsed > 0 && char.IsHighSurrogate(text[charsUsed - 1])) charsUsed--;
        return text[..charsUsed];
    }

    /// <summary>The lead a payload names, read leniently: a rejected payload is often not valid JSON.</summary>
    private static string? LeadIdOf(string payload)
    {
        var match = LeadIdField().Match(payload.Length <= 1_000_000 ? payload : payload[..1_000_000]);
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex("\"leadId\"\\s*:\\s*\"([^\"\\\\\\u0000-\\u001f]{1,128})\"", RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 1000)]
    private static partial Regex LeadIdField();
}
