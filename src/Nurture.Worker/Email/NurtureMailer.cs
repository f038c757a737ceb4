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
    /// <summary>The server answered this message with a temporary failure (4xx): try it again later, an attempt spent.</summary>
    TryLater,
    /// <summary>The server refused the address for good (a 5xx reply to the recipient or the message).</summary>
    Bounced,
    /// <summary>A permanent failure that is not the address's fault (e.g. a policy or content refusal).</summary>
    Failed,
    /// <summary>The connection broke before the server accepted the message: not the message's fault; send it again, no attempt spent.</summary>
    Interrupted,
    /// <summary>The server cannot be used at all (unreachable, closing, authentication or the sender refused): nothing was tried.</summary>
    Unavailable,
}

public sealed record SendResult(SendOutcome Outcome, string? Reason = null);

/// <summary>
/// Delivers nurture emails one at a time over <see cref="Lanes"/> lanes that may be used at once: persistent SMTP
/// connections, or a pickup folder.
/// </summary>
public abstract class NurtureMailer
{
    /// <summary>How many messages may be on their way at once (one per lane).</summary>
    public abstract int Lanes { get; }

    /// <summary>Sends one message over lane <paramref name="lane"/> (0 to <see cref="Lanes"/> − 1) and says what the server answered.</summary>
    public abstract Task<SendResult> SendAsync(int lane, MimeMessage message, CancellationToken cancel);

    /// <summary>Whether the server answers now; a lane that answers is kept for sending.</summary>
    public abstract Task<bool> ProbeAsync(CancellationToken cancel);

    public static NurtureMailer For(EmailSettings settings, ILoggerFactory logs) =>
        settings.UsesSmtp ? new SmtpMailer(settings, logs.CreateLogger<SmtpMailer>()) : new PickupFolderMailer(settings.PickupDirectory);
}

/// <summary>
/// MailKit over a small pool of SMTP connections (Nurture:Email:Smtp:Connections) that stay open between messages and
/// between rounds. Each is a socket we connect ourselves with TCP_NODELAY: without it the last small write of every
/// message waits for the server's delayed ACK (about 40 ms a message). MailKit pipelines MAIL FROM, RCPT TO and DATA
/// when the server offers PIPELINING. STARTTLS and authentication when configured.
/// </summary>
public sealed partial class SmtpMailer(EmailSettings settings, ILogger<SmtpMailer> log) : NurtureMailer, IAsyncDisposable
{
    /// <summary>A connection idle longer than this is checked with NOOP before a message goes over it (servers close idle sessions).</summary>
    private static readonly TimeSpan IdleCheck = TimeSpan.FromSeconds(30);

    private readonly Lane[] _lanes = Enumerable.Range(0, settings.Connections).Select(_ => new Lane()).ToArray();

    public override int Lanes => _lanes.Length;

    public override async Task<SendResult> SendAsync(int lane, MimeMessage message, CancellationToken cancel)
    {
        var l = _lanes[lane];
        await l.Gate.WaitAsync(cancel);
        try
        {
            if (await ReadyAsync(l, cancel) is { } failure) return failure;
            var result = await SendOneAsync(l.Client, message, cancel);
            l.LastUsed = DateTimeOffset.UtcNow;
            if (result.Outcome is SendOutcome.Interrupted or SendOutcome.Unavailable) await CloseAsync(l.Client, quit: false);
            return result;
        }
        finally
        {
            l.Gate.Release();
        }
    }

    public override async Task<bool> ProbeAsync(CancellationToken cancel)
    {
        var l = _lanes[0];
        await l.Gate.WaitAsync(cancel);
        try
        {
            return await ReadyAsync(l, cancel) is null;
        }
        finally
        {
            l.Gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var l in _lanes)
        {
            await CloseAsync(l.Client, quit: true);
            l.Client.Dispose();
            l.Gate.Dispose();
        }
    }

    /// <summary>Connected and answering, or the reason the server cannot be used.</summary>
    private async Task<SendResult?> ReadyAsync(Lane l, CancellationToken cancel)
    {
        if (l.Client.IsConnected && DateTimeOffset.UtcNow - l.LastUsed > IdleCheck)
        {
            try
            {
                await l.Client.NoOpAsync(cancel);
                l.LastUsed = DateTimeOffset.UtcNow;
            }
            catch (Exception e) when (e is SmtpCommandException or SmtpProtocolException or IOException or SocketException or ServiceNotConnectedException)
            {
                await CloseAsync(l.Client, quit: false);
            }
        }
        if (l.Client.IsConnected) return null;
        try
        {
            await ConnectAsync(l.Client, cancel);
            l.LastUsed = DateTimeOffset.UtcNow;
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancel.IsCancellationRequested)
        {
            // Unreachable, TLS or authentication refused, no AUTH offered: nothing can go out over this server now.
            await CloseAsync(l.Client, quit: false);
            LogUnavailable(log, settings.SmtpHost, settings.SmtpPort, e.Message);
            return new SendResult(SendOutcome.Unavailable, $"SMTP {settings.SmtpHost}:{settings.SmtpPort}: {e.Message}");
        }
    }

    private async Task ConnectAsync(SmtpClient client, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(settings.SmtpHost!, settings.SmtpPort, cancel);
            var security = settings.UseStartTls ? SecureSocketOptions.StartTls : settings.SmtpPort == 465 ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.None;
            await client.ConnectAsync(socket, settings.SmtpHost!, settings.SmtpPort, security, cancel);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        if (settings.SmtpUser is { } user) await client.AuthenticateAsync(user, settings.SmtpPassword ?? "", cancel);
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
            var reply = Redacted((int)e.StatusCode, e.ErrorCode, e.Message);
            // 421: the server is closing the session (shutting down, overloaded): the server's state, not this message's.
            if (e.StatusCode == SmtpStatusCode.ServiceNotAvailable) return new SendResult(SendOutcome.Unavailable, reply);
            if ((int)e.StatusCode < 500) return new SendResult(SendOutcome.TryLater, reply);
            return Permanent(e.ErrorCode, e.Message, reply);
        }
        catch (Exception e) when (e is SmtpProtocolException or IOException or SocketException or ServiceNotConnectedException)
        {
            // The connection broke before the server's reply: it did not accept this message, so it goes again.
            return new SendResult(SendOutcome.Interrupted, e.Message);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            // MailKit's own timeout: the server stopped answering mid-message.
            return new SendResult(SendOutcome.Interrupted, "the server stopped answering");
        }
    }

    private static async Task CloseAsync(SmtpClient client, bool quit)
    {
        if (!client.IsConnected) return;
        try
        {
            await client.DisconnectAsync(quit, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or SocketException or SmtpProtocolException or SmtpCommandException or ServiceNotConnectedException)
        {
            // Closing a connection that already broke.
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

    /// <summary>
    /// What is kept of an SMTP server's refusal (in nurture_steps, in EmailBounced.reason): its status code, its enhanced
    /// status code and words of our own. The server's own text is never kept: a 550 usually quotes the address.
    /// </summary>
    internal static string Redacted(int status, SmtpErrorCode code, string message)
    {
        var enhanced = EnhancedStatus().Match(message);
        var what = code switch
        {
            SmtpErrorCode.RecipientNotAccepted => "recipient not accepted",
            SmtpErrorCode.SenderNotAccepted => "sender not accepted",
            SmtpErrorCode.MessageNotAccepted => "message not accepted",
            _ => "unexpected reply",
        };
        return enhanced.Success ? $"{status} {enhanced.Groups[1].Value} {what}" : $"{status} {what}";
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*([245]\.[0-9]{1,3}\.[0-9]{1,3})\b")]
    private static partial System.Text.RegularExpressions.Regex EnhancedStatus();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot use the SMTP server {Host}:{Port}: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string? host, int port, string reason);

    private sealed class Lane
    {
        public SmtpClient Client { get; } = new();
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public DateTimeOffset LastUsed { get; set; }
    }
}

/// <summary>The embedded default: each email becomes an .eml file (named by its Message-ID, so a resend replaces it) in a folder.</summary>
public sealed class PickupFolderMailer(string directory) : NurtureMailer
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public override int Lanes => 1;

    public override async Task<SendResult> SendAsync(int lane, MimeMessage message, CancellationToken cancel)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var name = string.Concat((message.MessageId ?? Guid.NewGuid().ToString("N")).Split('@')[0].Select(c => char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_')) + ".eml";
        var path = Path.Combine(Directory, name);
        var temporary = path + ".tmp";
        await message.WriteToAsync(temporary, cancel);
        File.Move(temporary, path, overwrite: true);
        return new SendResult(SendOutcome.Sent);
    }

    public override Task<bool> ProbeAsync(CancellationToken cancel) => Task.FromResult(true);
}
