using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace Nurture.Worker.Email;

/// <summary>
/// Signed unsubscribe tokens: the lead id and an HMAC-SHA256 over it with a secret key, so a token can be checked
/// without a table and cannot be guessed or forged for another lead.
/// </summary>
public sealed class UnsubscribeTokens(byte[] key)
{
    public string Create(string leadId)
    {
        var id = WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes(leadId));
        return $"{id}.{WebEncoders.Base64UrlEncode(Sign(leadId))}";
    }

    /// <summary>The lead id the token was made for, or null when it is malformed or not signed with this key.</summary>
    public string? Verify(string token)
    {
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || token.Length > 600) return null;
        try
        {
            var leadId = Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(token[..dot]));
            var signature = WebEncoders.Base64UrlDecode(token[(dot + 1)..]);
            return CryptographicOperations.FixedTimeEquals(signature, Sign(leadId)) ? leadId : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private byte[] Sign(string leadId) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("nurture-unsubscribe:" + leadId));

    /// <summary>The configured key, or (SQLite) one kept in a key file beside the database, so links survive restarts.</summary>
    public static UnsubscribeTokens From(EmailSettings settings, string? dataFolder)
    {
        if (settings.UnsubscribeKey is { } configured) return new UnsubscribeTokens(Encoding.UTF8.GetBytes(configured));
        var key = Cli.KeyFile.ReadOrCreate($"{EmailSettings.Section}:UnsubscribeKey", settings.UnsubscribeKeyFile, dataFolder, () => Cli.KeyFile.NewSecret(32));
        return new UnsubscribeTokens(Convert.FromBase64String(key));
    }
}
