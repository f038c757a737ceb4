using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Nurture.Worker.Email;

public enum SendOutcome
{
    Sent,
    /// <summary>A temporary failure (a 4xx reply, a dropped connection): try again later.</summary>
    TryLater,
    /// <summary>The server refused the address for good (a 5xx reply to the recipient or the message).</summary>
    Bounced,
    /// <summary>A permanent failure that is not the address's fault (e.g. a policy or content refusal).</summary>
    Failed,
    /// <summary>The server cannot be used at all (unreachable, authentication or the sender refused): nothing was tried; try the round later.</summary>
    Unavailable,
}

public sealed record SendResult(SendOutcome Outcome, string? Reason = null);

/// <summary>Delivers a batch of nurture emails: to an SMTP server, or as .eml files to a pickup folder.</summary>
public abstract class NurtureMailer
{
    public abstract Task<IReadOnlyList<SendResult>> SendAsync(IReadOnlyList<MimeMessage> messages, CancellationToken cancel);

    public static NurtureMailer For(EmailSettings settings, ILoggerFactory logs) =>
        settings.UsesSmtp ? new SmtpMailer(settings, logs.CreateLogger<SmtpMailer>()) : new PickupFolderMailer(settings.PickupDirectory);
}

/// <summary>
/// MailKit over SMTP: the batch is split over <see cref="EmailSettings.Connections"/> connections, one SmtpClient each,
/// each connected once and reused for its share. STARTTLS and authentication when configured.
/// </summary>
public sealed class SmtpMailer(EmailSettings settings, ILogger<SmtpMailer> log) : NurtureMailer
{
    public override async Task<IReadOnlyList<SendResult>> SendAsync(IReadOnlyList<MimeMessage> messages, CancellationToken cancel)
    {
        var results = new SendResult[messages.Count];
        var connections = Math.Min(settings.Connections, Math.Max(1, messages.Count));
        await Task.WhenAll(Enumerable.Range(0, connections).Select(c =>
            SendShareAsync(messages, Enumerable.Range(0, messages.Count).Where(i => i % connections == c).ToList(), results, cancel)));
        return results;
    }

    private async Task SendShareAsync(IReadOnlyList<MimeMessage> messages, List<int> share, SendResult[] results, CancellationToken cancel)
    {
        using var client = new SmtpClient();
        try
        {
            foreach (var i in share)
            {
                if (!client.IsConnected && await ConnectAsync(client, cancel) is { } failure)
                {
                    foreach (var rest in share.Where(j => results[j] is null)) results[rest] = failure;
                    return;
                }
                try
                {
                    results[i] = await SendOneAsync(client, messages[i], cancel);
                }
                catch (Exception e) when (e is not OperationCanceledException || cancel.IsCancellationRequested)
                {
                    // Whatever went wrong, every message gets a result, so none stays claimed and is sent again by surprise.
                    results[i] = new SendResult(SendOutcome.TryLater, $"{e.GetType().Name}: {e.Message}");
                }
                if (results[i].Outcome == SendOutcome.Unavailable)
                {
                    foreach (var rest in share.Where(j => results[j] is null)) results[rest] = results[i];
                    return;
                }
            }
        }
        finally
        {
            if (client.IsConnected)
            {
                try
                {
                    await client.DisconnectAsync(quit: true, CancellationToken.None);
                }
                catch (Exception e) when (e is IOException or SocketException or SmtpProtocolException)
                {
                    // Closing a connection that already broke.
                }
            }
        }
    }

    private async Task<SendResult?> ConnectAsync(SmtpClient client, CancellationToken cancel)
    {
        try
        {
            var security = settings.UseStartTls ? SecureSocketOptions.StartTls : settings.SmtpPort == 465 ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.None;
            await client.ConnectAsync(settings.SmtpHost!, settings.SmtpPort, security, cancel);
            if (settings.SmtpUser is { } user) await client.AuthenticateAsync(user, settings.SmtpPassword ?? "", cancel);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Unreachable, TLS or authentication refused, no AUTH offered: nothing can go out over this server now.
            log.LogWarning("Cannot use the SMTP server {Host}:{Port}: {Reason}", settings.SmtpHost, settings.SmtpPort, e.Message);
            return new SendResult(SendOutcome.Unavailable, $"SMTP {settings.SmtpHost}:{settings.SmtpPort}: {e.Message}");
        }
    }

    private static async Task<SendResult> SendOneAsync(SmtpClient client, MimeMessage message, CancellationToken cancel)
    {
        try
        {
            await client.SendAsync(message, cancel);
            return new SendResult(SendOutcome.Sent);
        }
        catch (SmtpCommandException e)
        {
            var reply = $"{(int)e.StatusCode} {e.Message}";
            if ((int)e.StatusCode < 500) return new SendResult(SendOutcome.TryLater, reply);
            return Permanent(e.ErrorCode, e.Message, reply);
        }
        catch (Exception e) when (e is SmtpProtocolException or IOException or SocketException or ServiceNotConnectedException)
        {
            // The connection broke: this message is tried again later; the next one reconnects.
            if (client.IsConnected) await client.DisconnectAsync(quit: false, CancellationToken.None);
            return new SendResult(SendOutcome.TryLater, e.Message);
        }
    }

    /// <summary>
    /// A 5xx reply. Only the recipient's address is a bounce (RCPT refused, or 5.1.x: no such mailbox); a refused sender
    /// is our configuration, so nothing can go out (Unavailable); a policy or content refusal (5.7.x, e.g. SPF/DKIM, or
    /// 5.3.x) fails this message without suppressing an address that may be fine.
    /// </summary>
    internal static SendResult Permanent(SmtpErrorCode code, string message, string reply) => code switch
    {
        SmtpErrorCode.RecipientNotAccepted => new SendResult(SendOutcome.Bounced, reply),
        SmtpErrorCode.SenderNotAccepted => new SendResult(SendOutcome.Unavailable, reply),
        _ when message.TrimStart().StartsWith("5.1.", StringComparison.Ordinal) => new SendResult(SendOutcome.Bounced, reply),
        _ => new SendResult(SendOutcome.Failed, reply),
    };
}

/// <summary>The embedded default: each email becomes an .eml file (named by its Message-ID, so a resend replaces it) in a folder.</summary>
public sealed class PickupFolderMailer(string directory) : NurtureMailer
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public override async Task<IReadOnlyList<SendResult>> SendAsync(IReadOnlyList<MimeMessage> messages, CancellationToken cancel)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var results = new List<SendResult>(messages.Count);
        foreach (var message in messages)
        {
            var name = string.Concat((message.MessageId ?? Guid.NewGuid().ToString("N")).Split('@')[0].Select(c => char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_')) + ".eml";
            var path = Path.Combine(Directory, name);
            var temporary = path + ".tmp";
            await message.WriteToAsync(temporary, cancel);
            File.Move(temporary, path, overwrite: true);
            results.Add(new SendResult(SendOutcome.Sent));
        }
        return results;
    }
}
