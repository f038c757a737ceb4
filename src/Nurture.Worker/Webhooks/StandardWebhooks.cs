using System.Security.Cryptography;
using System.Text;

namespace Nurture.Worker.Webhooks;

/// <summary>
/// The Standard Webhooks signature (https://www.standardwebhooks.com): HMAC-SHA256 with the secret's bytes over
/// "{webhook-id}.{webhook-timestamp}.{body}", sent as "v1,{base64}" in the webhook-signature header.
/// </summary>
public static class StandardWebhooks
{
    public static string Sign(byte[] key, string id, long timestamp, string body) =>
        "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")));
}
