using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Nurture.Worker.Cli;

/// <summary>
/// The demo's sales side: a webhook receiver on a loopback port that checks each hand-off's Standard Webhooks
/// signature, as a CRM would, and prints the hand-off as sales would see it.
/// </summary>
public sealed class DemoWebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly byte[] _key;
    private int _received;
    private int _valid;

    private DemoWebhookReceiver(WebApplication app, byte[] key)
    {
        _app = app;
        _key = key;
    }

    public string Secret => "whsec_" + Convert.ToBase64String(_key);
    public string Url => _app.Urls.First() + "/hand-off";
    public int Received => _received;
    public int Valid => _valid;

    /// <summary>Where the hand-offs are printed; the progress line is redrawn after each.</summary>
    public Action<string> Print { get; set; } = Console.Out.WriteLine;

    public static async Task<DemoWebhookReceiver> StartAsync(CancellationToken cancel)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new DemoWebhookReceiver(app, RandomNumberGenerator.GetBytes(32));
        app.MapPost("/hand-off", receiver.ReceiveAsync);
        await app.StartAsync(cancel);
        return receiver;
    }

    private async Task<IResult> ReceiveAsync(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body);
        var body = await reader.ReadToEndAsync();
        var id = request.Headers["webhook-id"].ToString();
        var timestamp = request.Headers["webhook-timestamp"].ToString();
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")));
        var valid = request.Headers["webhook-signature"].ToString().Split(' ')
            .Any(s => CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(s), Encoding.UTF8.GetBytes(expected)));
        Interlocked.Increment(ref _received);
        if (!valid) return Results.Unauthorized();
        Interlocked.Increment(ref _valid);
        using var json = JsonDocument.Parse(body);
        var data = json.RootElement.GetProperty("data");
        var reasons = data.TryGetProperty("explanation", out var lines)
            ? string.Join(", ", lines.EnumerateArray().Where(l => l.GetProperty("points").GetDouble() > 0 && l.GetProperty("rule").GetString()!.StartsWith("activity:", StringComparison.Ordinal))
                .Select(l => l.GetProperty("rule").GetString()!["activity:".Length..]))
            : "";
        Print(string.Create(CultureInfo.InvariantCulture,
            $"  sales hears (signed webhook {id[..12]}…, signature valid): MQL {data.GetProperty("leadId").GetString()}, score {data.GetProperty("score").GetDouble():0}, source {(data.TryGetProperty("source", out var s) ? s.GetString() : "?")} — {reasons}"));
        return Results.NoContent();
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>
/// The demo's readers: some click an email's call to action (a person, a while after it arrived); for some a mail
/// gateway checks every link with HEAD first (a machine: recorded, not scored).
/// </summary>
public sealed partial class DemoRecipients(string mailFolder, int seed) : IDisposable
{
    private readonly HashSet<string> _seen = [];
    private readonly Random _random = new(seed);
    private readonly HttpClient _http = new(new HttpClientHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(10) };

    public int ByPeople { get; private set; }
    public int ByMachines { get; private set; }

    /// <summary>Reads the emails written since the last look and clicks as their readers would.</summary>
    public async Task ReadNewAsync(CancellationToken cancel)
    {
        if (!Directory.Exists(mailFolder)) return;
        foreach (var file in Directory.GetFiles(mailFolder, "*.eml").Order(StringComparer.Ordinal))
        {
            if (!_seen.Add(file)) continue;
            var message = await MimeMessage.LoadAsync(file, cancel);
            var links = TrackedLink().Matches(message.TextBody ?? "").Select(m => m.Value).Distinct().ToList();
            if (links.Count == 0) continue;
            var roll = _random.NextDouble();
            if (roll < 0.15)
            {
                foreach (var link in links)
                {
                    using var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, link), cancel);
                    ByMachines++;
                }
            }
            if (roll is >= 0.1 and < 0.5)
            {
                using var click = await _http.GetAsync(links[_random.Next(links.Count)], cancel);
                ByPeople++;
            }
        }
    }

    public void Dispose() => _http.Dispose();

    [GeneratedRegex(@"https?://[^\s]+/r/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")]
    private static partial Regex TrackedLink();
}
