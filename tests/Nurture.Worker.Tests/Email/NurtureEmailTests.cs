using Dapper;
using Nurture.Contracts;
using Nurture.Worker.Tests.Messaging;
using Nurture.Worker.Tests.Storage;
using SmtpServer;
using SmtpServer.Protocol;
using Nurture.Worker.Email;

namespace Nurture.Worker.Tests.Email;

/// <summary>Nurture emails through a real SMTP server on loopback, and the unsubscribe link over real HTTP.</summary>
public class When_nurture_emails_go_out_over_smtp
{
    [Fact]
    public async Task Should_let_every_composed_email_go_once_dropped_instead_of_tying_it_to_the_configured_addresses()
    {
        using var smtp = new TestSmtpServer();
        await using var rig = await MailRig.StartAsync(smtp);
        await rig.Apply(MailRig.Captured("gc-1", MailRig.Monday, "gc-1@softwarehaus.example"));
        var lead = (await rig.Store.LoadLeadAsync("gc-1"))!.Lead;
        var composer = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<MailComposer>(rig.App.Services);

        // The From and Reply-To addresses come from the settings, shared by every email; the emails must not hang on them.
        var composed = ComposeAndDrop(composer, lead, 20);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.Equal(0, composed.Count(w => w.IsAlive));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static List<WeakReference> ComposeAndDrop(MailComposer composer, Nurture.Core.Lead lead, int count) =>
        [.. Enumerable.Range(0, count).Select(_ => new WeakReference(composer.Compose(lead, "software", 0, "software-welcome", Guid.NewGuid(), MailRig.Monday)))];

    [Fact]
    public async Task Should_deliver_both_parts_personalised_with_unsubscribe_headers_and_a_token_the_endpoint_accepts_once()
    {
        using var smtp = new TestSmtpServer();
        await using var rig = await MailRig.StartAsync(smtp);
        await rig.Apply(MailRig.Captured("mail-1", MailRig.Monday, "anna@softwarehaus.example", company: "Müller <Schmidt> & Co"));

        Assert.Equal(1, await rig.Dispatch.DispatchDueAsync());

        var message = Assert.Single(smtp.Messages);
        Assert.Equal("Willkommen bei Nurture Test!", message.Subject);
        Assert.Equal("anna@softwarehaus.example", message.To.Mailboxes.Single().Address);
        Assert.StartsWith("Hallo Anna,", message.TextBody, StringComparison.Ordinal);
        Assert.Contains("Müller <Schmidt> & Co", message.TextBody, StringComparison.Ordinal);
        Assert.Contains("Hallo Anna", message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("Müller &lt;Schmidt&gt; &amp; Co", message.HtmlBody, StringComparison.Ordinal); // lead data is escaped in HTML
        Assert.Equal("List-Unsubscribe=One-Click", message.Headers["List-Unsubscribe-Post"]);
        var link = message.Headers["List-Unsubscribe"]!.Trim().Trim('<', '>');
        Assert.StartsWith(rig.App.Urls.First() + "/unsubscribe/", link, StringComparison.Ordinal);
        Assert.Contains(link, message.TextBody, StringComparison.Ordinal);
        Assert.Matches(@"^nurture\.[0-9a-f]{32}@nurture\.example$", message.MessageId);

        using var http = new HttpClient();
        using var oneClick = new FormUrlEncodedContent([KeyValuePair.Create("List-Unsubscribe", "One-Click")]);
        var first = await http.PostAsync(link, oneClick);
        var again = await http.PostAsync(link, oneClick);
        var forged = await http.PostAsync(link[..^3] + "AAA", oneClick);
        var page = await http.GetAsync(link);

        Assert.True(first.IsSuccessStatusCode);
        Assert.Contains("You are unsubscribed", await first.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("already unsubscribed", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Contains("<form method=\"post\"", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal); // GET only asks
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE type = 'LeadUnsubscribed' AND lead_id = 'mail-1'"));
        Assert.True((await rig.Store.LoadLeadAsync("mail-1"))!.Lead.Unsubscribed);
        Assert.True(await rig.Store.IsSuppressedAsync("anna@softwarehaus.example"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status IN ('pending', 'claimed')"));
    }

    [Fact]
    public async Task Should_send_once_when_the_server_answers_451_and_then_250()
    {
        using var smtp = new TestSmtpServer { Reply = n => n == 1 ? new SmtpResponse((SmtpReplyCode)451, "4.3.0 try again later") : null };
        await using var rig = await MailRig.StartAsync(smtp);
        await rig.Apply(MailRig.Captured("mail-2", MailRig.Monday, "ben@softwarehaus.example"));

        await rig.Dispatch.DispatchDueAsync();
        Assert.Empty(smtp.Messages);
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'pending' AND last_error LIKE '451%'"));
        await rig.Dispatch.DispatchDueAsync(); // not due again yet: the retry waits a minute
        Assert.Equal(1, smtp.DataCommands);

        rig.Clock.Advance(TimeSpan.FromMinutes(2));
        await rig.Dispatch.DispatchDueAsync();
        rig.Clock.Advance(TimeSpan.FromMinutes(10));
        await rig.Dispatch.DispatchDueAsync();

        Assert.Single(smtp.Messages);
        Assert.Equal(2, smtp.DataCommands);
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'mail-2' AND step = 0 AND status = 'sent' AND attempts = 2"));
    }

    [Fact]
    public async Task Should_mark_the_address_bounced_and_suppress_it_when_the_server_answers_550()
    {
        using var smtp = new TestSmtpServer();
        smtp.Refuse.Add("gone@softwarehaus.example");
        await using var rig = await MailRig.StartAsync(smtp);
        await rig.Apply(MailRig.Captured("mail-3", MailRig.Monday, "gone@softwarehaus.example"), MailRig.Captured("mail-4", MailRig.Monday, "here@softwarehaus.example"));

        await rig.Dispatch.DispatchDueAsync();

        Assert.Equal("here@softwarehaus.example", Assert.Single(smtp.Messages).To.Mailboxes.Single().Address);
        Assert.True(await rig.Store.IsSuppressedAsync("gone@softwarehaus.example"));
        Assert.True((await rig.Store.LoadLeadAsync("mail-3"))!.Lead.HardBounced);
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE type = 'EmailBounced' AND lead_id = 'mail-3'"));
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'mail-3' AND status = 'failed' AND last_error LIKE 'bounced: 550%'"));
        // The server's reply is never kept: its codes and words of our own.
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE last_error LIKE '%@%'"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE type = 'EmailBounced' AND payload LIKE '%gone@%'"));
        await rig.RunFor(TimeSpan.FromDays(20), TimeSpan.FromHours(6));
        Assert.DoesNotContain(smtp.Messages, m => m.To.Mailboxes.Any(a => a.Address == "gone@softwarehaus.example"));
    }

    [Fact]
    public async Task Should_put_every_step_back_without_using_an_attempt_when_the_server_cannot_be_reached()
    {
        int closedPort;
        using (var smtp = new TestSmtpServer()) closedPort = smtp.Port; // nothing listens there any more
        await using var rig = await MailRig.StartAsync(smtpPort: closedPort);
        await rig.Apply(MailRig.Captured("down-1", MailRig.Monday, "one@softwarehaus.example"), MailRig.Captured("down-2", MailRig.Monday, "two@softwarehaus.example"));

        await rig.Dispatch.DispatchAllDueAsync();

        Assert.Equal(2, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'pending' AND attempts = 0 AND last_error LIKE 'SMTP 127.0.0.1:%'"));
        Assert.False((await rig.Store.LoadLeadAsync("down-1"))!.Lead.HardBounced);
    }

    [Theory]
    [InlineData(550, MailKit.Net.Smtp.SmtpErrorCode.RecipientNotAccepted, "5.1.1 <anna.schmidt@softwarehaus.example>: Recipient address rejected: User unknown", "550 5.1.1 recipient not accepted")]
    [InlineData(552, MailKit.Net.Smtp.SmtpErrorCode.MessageNotAccepted, "Mailbox of Anna Schmidt is full", "552 message not accepted")]
    [InlineData(451, MailKit.Net.Smtp.SmtpErrorCode.UnexpectedStatusCode, " 4.7.1 Greylisted, anna@softwarehaus.example try again", "451 4.7.1 unexpected reply")]
    public void Should_keep_only_the_codes_of_an_smtp_reply(int status, MailKit.Net.Smtp.SmtpErrorCode code, string message, string kept)
    {
        Assert.Equal(kept, SmtpMailer.Redacted(status, code, message));
    }

    [Theory]
    [InlineData(MailKit.Net.Smtp.SmtpErrorCode.RecipientNotAccepted, "5.1.1 no such user", SendOutcome.Bounced)]
    [InlineData(MailKit.Net.Smtp.SmtpErrorCode.MessageNotAccepted, "5.1.1 mailbox unknown", SendOutcome.Bounced)]
    [InlineData(MailKit.Net.Smtp.SmtpErrorCode.MessageNotAccepted, "5.7.26 unauthenticated email is not accepted (SPF/DKIM)", SendOutcome.Failed)]
    [InlineData(MailKit.Net.Smtp.SmtpErrorCode.SenderNotAccepted, "5.7.1 sender refused", SendOutcome.Unavailable)]
    public void Should_suppress_an_address_only_when_the_reply_blames_the_address(MailKit.Net.Smtp.SmtpErrorCode code, string message, SendOutcome expected)
    {
        Assert.Equal(expected, SmtpMailer.Permanent(code, message, "550 " + message).Outcome);
    }

    [Fact]
    public async Task Should_keep_lead_data_from_adding_headers()
    {
        using var smtp = new TestSmtpServer();
        await using var rig = await MailRig.StartAsync(smtp);
        await rig.Apply(MailRig.Captured("mail-5", MailRig.Monday, "eve@softwarehaus.example", firstName: "Eve\r\nBcc: spy@evil.example\r\nX-Injected: yes", language: "en"));

        await rig.Dispatch.DispatchDueAsync();

        var message = Assert.Single(smtp.Messages);
        Assert.Empty(message.Bcc);
        Assert.Null(message.Headers["X-Injected"]);
        Assert.DoesNotContain("\n", message.Subject, StringComparison.Ordinal);
        Assert.Single(message.To.Mailboxes);
        Assert.Equal("eve@softwarehaus.example", message.To.Mailboxes.Single().Address);
    }
}
