using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Email;

/// <summary>Nurture:Email:Clicks and Nurture:Email:TrackOpens: what counts as a machine click, and whether opens are tracked.</summary>
public sealed record ClickSettings
{
    /// <summary>A click this soon after the email went out is a link scanner's (mail gateways check links on arrival).</summary>
    public int MachineSeconds { get; init; } = 15;
    /// <summary>Another link of the same email clicked this close in time: a scanner clicking every link.</summary>
    public int BurstSeconds { get; init; } = 2;
    /// <summary>An invisible image in the HTML part records emailOpened. Off by default: images are often blocked or prefetched.</summary>
    public bool TrackOpens { get; init; }

    public static ClickSettings Load(IConfiguration configuration)
    {
        var s = configuration.GetSection(EmailSettings.Section);
        var d = new ClickSettings();
        return new ClickSettings
        {
            MachineSeconds = s.WholeNumber("Clicks:MachineSeconds", d.MachineSeconds, 0, 86_400),
            BurstSeconds = s.WholeNumber("Clicks:BurstSeconds", d.BurstSeconds, 0, 60),
            TrackOpens = s.Flag("TrackOpens", d.TrackOpens),
        };
    }
}

/// <summary>What a tracked link carries: the lead, the email (its step key), the link and where it leads, and when the email went out.</summary>
public sealed record TrackedLink(string LeadId, Guid Email, string Track, int Step, int Link, string Url, DateTimeOffset SentAt);

/// <summary>
/// Signed link tokens: the link's data and an HMAC-SHA256 over it, so a click needs no table and an altered token
/// (another lead, another target) is refused. Signed with the unsubscribe key under another purpose.
/// </summary>
public sealed class ClickTokens(byte[] key)
{
    /// <summary>The link index an open-tracking image carries.</summary>
    public const int Open = -1;

    public string Create(TrackedLink link)
    {
        var data = JsonSerializer.SerializeToUtf8Bytes(new[] { link.LeadId, link.Email.ToString("N"), link.Track, link.Step.ToString(CultureInfo.InvariantCulture),
            link.Link.ToString(CultureInfo.InvariantCulture), link.Url, link.SentAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) });
        return $"{WebEncoders.Base64UrlEncode(data)}.{WebEncoders.Base64UrlEncode(Sign(data))}";
    }

    /// <summary>The link the token was made for, or null when it is malformed or not signed with this key.</summary>
    public TrackedLink? Verify(string token)
    {
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || token.Length > 4000) return null;
        try
        {
            var data = WebEncoders.Base64UrlDecode(token[..dot]);
            if (!CryptographicOperations.FixedTimeEquals(WebEncoders.Base64UrlDecode(token[(dot + 1)..]), Sign(data))) return null;
            var f = JsonSerializer.Deserialize<string[]>(data);
            if (f is not { Length: 7 }) return null;
            return new TrackedLink(f[0], Guid.ParseExact(f[1], "N"), f[2], int.Parse(f[3], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture), f[5],
                DateTimeOffset.FromUnixTimeSeconds(long.Parse(f[6], CultureInfo.InvariantCulture)));
        }
        catch (Exception e) when (e is FormatException or JsonException or OverflowException)
        {
            return null;
        }
    }

    private byte[] Sign(byte[] data)
    {
        byte[] input = [.. "nurture-click:"u8, .. data];
        return HMACSHA256.HashData(key, input);
    }

    /// <summary>The unsubscribe key (configured, or the key file beside the SQLite database).</summary>
    public static ClickTokens From(EmailSettings settings, string? dataFolder)
    {
        if (settings.UnsubscribeKey is { } configured) return new ClickTokens(Encoding.UTF8.GetBytes(configured));
        var key = KeyFile.ReadOrCreate($"{EmailSettings.Section}:UnsubscribeKey", settings.UnsubscribeKeyFile, dataFolder, () => KeyFile.NewSecret(32));
        return new ClickTokens(Convert.FromBase64String(key));
    }
}

/// <summary>
/// The redirect every link of a nurture email goes through (/r/{token}): records emailClicked for the lead, step and
/// link, then sends the browser on (302). Machine clicks (HEAD, right after delivery, every link at once) are recorded
/// with machine=true and score nothing. A token that does not verify records nothing and lands on a harmless page.
/// </summary>
public static partial class ClickTracking
{
    // Recent clicks per email in this process: a scanner clicks every link at once, faster than the history is written.
    private static readonly ConcurrentDictionary<Guid, List<(int Link, DateTimeOffset At)>> Recent = new();

    /// <summary>A 1×1 transparent GIF.</summary>
    private static readonly byte[] Pixel = Convert.FromBase64String("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7");

    public static void MapClickTracking(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/r/{token}", [HttpMethods.Get, HttpMethods.Head], ClickAsync);
        app.MapMethods("/o/{token}", [HttpMethods.Get, HttpMethods.Head], OpenAsync);
        app.MapGet("/link-not-valid", () => Results.Content("""
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Nurture</title></head>
            <body style="font-family:sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem"><p>This link is not valid.</p><p lang="de">Dieser Link ist ungültig.</p></body></html>
            """, "text/html; charset=utf-8", statusCode: StatusCodes.Status404NotFound));
    }

    private static async Task<IResult> ClickAsync(string token, HttpRequest request, ClickTokens tokens, ClickSettings settings, LeadStore store, Leads.LeadEventHandler handler,
        TimeProvider clock, PublicAddress address, ILogger<ClickTokens> log, CancellationToken cancel)
    {
        if (tokens.Verify(token) is not { Link: >= 0 } link)
        {
            LogForged(log, "click");
            return Results.Redirect(new Uri(address.BaseUrl, "link-not-valid").ToString());
        }
        var now = clock.GetUtcNow();
        var others = await OtherClicksAsync(store, link, now, settings, cancel);
        var machine = Clicks.MachineReason(HttpMethods.IsHead(request.Method), link.SentAt, now, others, link.Link,
            TimeSpan.FromSeconds(settings.MachineSeconds), TimeSpan.FromSeconds(settings.BurstSeconds));
        await RecordAsync(handler, link, ActivityType.EmailClicked, machine, now, cancel);
        return Results.Redirect(link.Url);
    }

    private static async Task<IResult> OpenAsync(string token, HttpRequest request, ClickTokens tokens, ClickSettings settings, LeadStore store, Leads.LeadEventHandler handler,
        TimeProvider clock, CancellationToken cancel)
    {
        if (settings.TrackOpens && tokens.Verify(token) is { Link: ClickTokens.Open } link)
        {
            var now = clock.GetUtcNow();
            var machine = HttpMethods.IsHead(request.Method) ? "HEAD request"
                : now - link.SentAt < TimeSpan.FromSeconds(settings.MachineSeconds) ? "opened right after delivery (prefetch)" : null;
            await RecordAsync(handler, link, ActivityType.EmailOpened, machine, now, cancel);
        }
        return Results.File(Pixel, "image/gif");
    }

    /// <summary>
    /// Through the lead pipeline, like an unsubscribe: one event id per email, link and kind (person or machine), so
    /// clicking the same link again changes nothing, and a scanner's click does not hide the person's later one.
    /// </summary>
    private static Task<IReadOnlyList<Leads.AppliedEvent>> RecordAsync(Leads.LeadEventHandler handler, TrackedLink link, ActivityType activity, string? machine, DateTimeOffset now, CancellationToken cancel)
    {
        var properties = new Dictionary<string, string>
        {
            ["email"] = link.Email.ToString("N"), [Clicks.Track] = link.Track, [Clicks.Step] = link.Step.ToString(CultureInfo.InvariantCulture),
        };
        if (activity == ActivityType.EmailClicked)
        {
            properties["link"] = link.Link.ToString(CultureInfo.InvariantCulture);
            properties["url"] = link.Url;
        }
        if (machine is not null)
        {
            properties[Clicks.Machine] = "true";
            properties["machineReason"] = machine;
        }
        var kind = machine is null ? "person" : "machine";
        var recorded = new LeadActivityRecorded
        {
            EventId = Lifecycle.DerivedId(link.Email, $"{Activities.NameOf(activity)}:{link.Link}:{kind}"), LeadId = link.LeadId, OccurredAt = now,
            Activity = activity, Properties = properties,
        };
        return handler.HandleNowAsync([recorded], "click", cancel);
    }

    /// <summary>Clicks on other links of the same email close to now: those in this process and those stored (another worker's).</summary>
    private static async Task<IReadOnlyList<(int Link, DateTimeOffset At)>> OtherClicksAsync(LeadStore store, TrackedLink link, DateTimeOffset now, ClickSettings settings, CancellationToken cancel)
    {
        var window = TimeSpan.FromSeconds(Math.Max(settings.BurstSeconds, 1) * 5);
        List<(int Link, DateTimeOffset At)> recent;
        var list = Recent.GetOrAdd(link.Email, _ => []);
        lock (list)
        {
            list.RemoveAll(c => (now - c.At).Duration() > window);
            recent = [.. list];
            list.Add((link.Link, now));
        }
        foreach (var entry in Recent)
        {
            lock (entry.Value)
            {
                if (entry.Value.TrueForAll(c => (now - c.At).Duration() > window)) Recent.TryRemove(entry);
            }
        }
        // Another worker's clicks: only the lead's activities of the window are read, not its whole history.
        var email = link.Email.ToString("N");
        recent.AddRange((await store.ActivitiesSinceAsync(link.LeadId, now - window, cancel))
            .Where(a => a.Activity == ActivityType.EmailClicked && a.Properties is { } p && p.GetValueOrDefault("email") == email
                && int.TryParse(p.GetValueOrDefault("link"), CultureInfo.InvariantCulture, out _))
            .Select(a => (int.Parse(a.Properties!["link"], CultureInfo.InvariantCulture), a.OccurredAt)));
        return recent;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "A {Kind} token did not verify: nothing recorded, sent to the not-valid page")]
    private static partial void LogForged(ILogger log, string kind);
}
