using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Email;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Email;

/// <summary>Calls to action in a real email over real SMTP, clicked over real HTTP against the worker's redirect.</summary>
public partial class When_a_lead_clicks_a_link_in_a_nurture_email
{
    private const string Lead = "click-1";

    private static async Task<(MailRig Rig, MimeKit.MimeMessage Message)> SentAsync(TestSmtpServer smtp)
    {
        var rig = await MailRig.StartAsync(smtp);
        await rig.Apply(MailRig.Captured(Lead, MailRig.Monday, "anna@softwarehaus.example", language: "en"));
        Assert.Equal(1, await rig.Dispatch.DispatchDueAsync());
        return (rig, Assert.Single(smtp.Messages));
    }

    private static HttpClient Browser() => new(new HttpClientHandler { AllowAutoRedirect = false });

    private static string[] Links(string? body) => [.. TrackedLink().Matches(body ?? "").Select(m => m.Value)];

    private static Task<long> ClickEvents(MailRig rig) =>
        rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE type = 'LeadActivityRecorded' AND lead_id = @Lead", new { Lead });

    [Fact]
    public async Task Should_record_emailClicked_for_the_lead_step_and_link_and_redirect_to_the_target()
    {
        using var smtp = new TestSmtpServer();
        var (rig, message) = await SentAsync(smtp);
        await using var _ = rig;
        var link = Assert.Single(Links(message.TextBody));
        Assert.StartsWith(rig.App.Urls.First() + "/r/", link, StringComparison.Ordinal);
        Assert.Contains(link, message.HtmlBody, StringComparison.Ordinal);
        Assert.Contains("Start your free trial", message.TextBody, StringComparison.Ordinal);
        rig.Clock.Advance(TimeSpan.FromMinutes(3)); // a person reads the email a while after it arrived

        using var browser = Browser();
        using var response = await browser.GetAsync(link);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("https://example.com/software/trial", response.Headers.Location!.ToString());
        var lead = (await rig.Store.LoadLeadAsync(Lead))!.Lead;
        Assert.Equal(1, lead.Activities[ActivityType.EmailClicked]);
        var clicked = Assert.IsType<LeadActivityRecorded>((await rig.Store.HistoryAsync(Lead))[^1]);
        Assert.Equal(ActivityType.EmailClicked, clicked.Activity);
        Assert.Equal("software", clicked.Properties!["track"]);
        Assert.Equal("0", clicked.Properties["step"]);
        Assert.Equal("0", clicked.Properties["link"]);
        Assert.Equal("https://example.com/software/trial", clicked.Properties["url"]);
        Assert.False(clicked.Properties.ContainsKey(Core.Clicks.Machine));

        using var again = await browser.GetAsync(link); // the same link again: redirected, not counted twice
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        Assert.Equal(1, await ClickEvents(rig));
    }

    [Fact]
    public async Task Should_record_nothing_and_send_to_the_not_valid_page_when_the_token_is_altered()
    {
        using var smtp = new TestSmtpServer();
        var (rig, message) = await SentAsync(smtp);
        await using var _ = rig;
        var link = Links(message.TextBody)[0];
        var token = link[(link.LastIndexOf('/') + 1)..];
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        // Another target in the signed part (an open redirect), and a signature from another key.
        var otherTarget = new ClickTokens(new byte[32]).Create(new TrackedLink(Lead, Guid.NewGuid(), "software", 0, 0, "https://evil.example/", MailRig.Monday));
        var altered = new[]
        {
            link[..(link.Length - token.Length)] + token[..(dot - 2)] + (token[dot - 2] == 'A' ? "B" : "A") + token[(dot - 1)..],
            link[..(link.Length - token.Length)] + otherTarget,
            link[..(link.Length - token.Length)] + "not-a-token",
        };
        rig.Clock.Advance(TimeSpan.FromMinutes(3));

        using var browser = Browser();
        foreach (var forged in altered)
        {
            using var response = await browser.GetAsync(forged);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            Assert.Equal(rig.App.Urls.First() + "/link-not-valid", response.Headers.Location!.ToString());
        }

        Assert.Equal(0, await ClickEvents(rig));
        Assert.False((await rig.Store.LoadLeadAsync(Lead))!.Lead.Activities.ContainsKey(ActivityType.EmailClicked));
        using var page = await browser.GetAsync(rig.App.Urls.First() + "/link-not-valid");
        Assert.Contains("This link is not valid", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_record_machine_clicks_as_such_without_scoring_them()
    {
        using var smtp = new TestSmtpServer();
        var (rig, message) = await SentAsync(smtp);
        await using var _ = rig;
        var link = Links(message.TextBody)[0];
        var scoreBefore = Scoring.Score((await rig.Store.LoadLeadAsync(Lead))!.Lead, rig.Clock.GetUtcNow(), rig.Definition).Total;
        using var browser = Browser();

        var tokens = rig.App.Services.GetRequiredService<ClickTokens>();
        string Link(Guid email, int index, string url, DateTimeOffset sentAt) =>
            $"{rig.App.Urls.First()}/r/{tokens.Create(new TrackedLink(Lead, email, "software", 2, index, url, sentAt))}";

        // A mail gateway checks the link the moment the email arrives.
        rig.Clock.Advance(TimeSpan.FromSeconds(3));
        using var early = await browser.GetAsync(link);
        // A scanner asks with HEAD, long after delivery.
        rig.Clock.Advance(TimeSpan.FromMinutes(5));
        var sentAt = rig.Clock.GetUtcNow().AddMinutes(-5);
        using var head = await browser.SendAsync(new HttpRequestMessage(HttpMethod.Head, Link(Guid.NewGuid(), 0, "https://example.com/software/webinar", sentAt)));
        rig.Clock.Advance(TimeSpan.FromMinutes(1));
        // A scanner that clicks every link of an email (one with two links) at once.
        var email = Guid.NewGuid();
        using var first = await browser.GetAsync(Link(email, 0, "https://example.com/software/webinar", sentAt));
        rig.Clock.Advance(TimeSpan.FromMilliseconds(400));
        using var second = await browser.GetAsync(Link(email, 1, "https://example.com/software/pricing", sentAt));

        foreach (var response in new[] { early, head, first, second }) Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("https://example.com/software/pricing", second.Headers.Location!.ToString());
        var clicks = (await rig.Store.HistoryAsync(Lead)).OfType<LeadActivityRecorded>().ToList();
        Assert.Equal(4, clicks.Count);
        Assert.Equal(["true", "true", null, "true"], clicks.Select(c => c.Properties!.GetValueOrDefault(Core.Clicks.Machine)));
        Assert.Contains("within 15 s of delivery", clicks[0].Properties!["machineReason"], StringComparison.Ordinal);
        Assert.Equal("HEAD request", clicks[1].Properties!["machineReason"]);
        Assert.Contains("another link", clicks[3].Properties!["machineReason"], StringComparison.Ordinal);
        var lead = (await rig.Store.LoadLeadAsync(Lead))!.Lead;
        Assert.Equal(1, lead.Activities[ActivityType.EmailClicked]); // only the one a person could have made
        Assert.Equal(1, lead.EngagementsSinceRecycle);
        Assert.Equal(scoreBefore + 3, Scoring.Score(lead, rig.Clock.GetUtcNow(), rig.Definition).Total);
    }

    [Fact]
    public async Task Should_take_a_click_on_another_link_that_another_worker_stored_moments_before_for_a_scanners()
    {
        using var smtp = new TestSmtpServer();
        var (rig, _) = await SentAsync(smtp);
        await using var _ = rig;
        var tokens = rig.App.Services.GetRequiredService<ClickTokens>();
        rig.Clock.Advance(TimeSpan.FromMinutes(10));
        var now = rig.Clock.GetUtcNow();
        var sentAt = now.AddMinutes(-10);
        string Link(Guid email, int index) =>
            $"{rig.App.Urls.First()}/r/{tokens.Create(new TrackedLink(Lead, email, "software", 2, index, "https://example.com/software/pricing", sentAt))}";
        // Link 0 of two emails was clicked through another worker: this process knows of it only from the stored event.
        LeadActivityRecorded OtherWorkers(Guid email, DateTimeOffset at) => new()
        {
            EventId = Guid.NewGuid(), LeadId = Lead, OccurredAt = at, Activity = ActivityType.EmailClicked,
            Properties = new Dictionary<string, string>
            {
                ["email"] = email.ToString("N"), [Core.Clicks.Track] = "software", [Core.Clicks.Step] = "2", ["link"] = "0",
                ["url"] = "https://example.com/software/webinar",
            },
        };
        var scanned = Guid.NewGuid();
        var read = Guid.NewGuid();
        await rig.Apply(OtherWorkers(scanned, now.AddMilliseconds(-800)), OtherWorkers(read, now.AddMinutes(-2)));

        using var browser = Browser();
        using var burst = await browser.GetAsync(Link(scanned, 1));
        using var later = await browser.GetAsync(Link(read, 1));

        Assert.Equal(HttpStatusCode.Redirect, burst.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, later.StatusCode);
        // Both at the same moment (the clock stands still), so found by their email rather than by their order.
        var redirected = (await rig.Store.HistoryAsync(Lead)).OfType<LeadActivityRecorded>().Where(c => c.Properties!["link"] == "1")
            .ToDictionary(c => c.Properties!["email"], c => c.Properties!);
        Assert.Equal(2, redirected.Count);
        Assert.Contains("another link", redirected[scanned.ToString("N")]["machineReason"], StringComparison.Ordinal);
        Assert.False(redirected[read.ToString("N")].ContainsKey(Core.Clicks.Machine)); // two minutes apart: a person reading on
    }

    [Fact]
    public async Task Should_carry_reply_to_the_sender_name_of_the_track_and_the_footer_in_both_parts()
    {
        using var smtp = new TestSmtpServer();
        await using var rig = await MailRig.StartAsync(smtp, more: new Dictionary<string, string?> { ["Nurture:Email:SenderNames:software"] = "Softwarehaus Team" });
        await rig.Apply(
            MailRig.Captured("footer-de", MailRig.Monday, "anna@softwarehaus.example"),
            MailRig.Captured("footer-en", MailRig.Monday, "ben@softwarehaus.example", language: "en") with { Industry = "solar" });

        Assert.Equal(2, await rig.Dispatch.DispatchDueAsync());

        Assert.Equal(2, smtp.Messages.Count);
        foreach (var message in smtp.Messages)
        {
            Assert.Equal("sales@nurture.example", Assert.Single(message.ReplyTo.Mailboxes).Address);
            foreach (var part in new[] { message.TextBody, message.HtmlBody })
            {
                Assert.Contains("Nurture Test GmbH", part, StringComparison.Ordinal);
                Assert.Contains("Musterstraße 1", part, StringComparison.Ordinal);
                Assert.Contains("10115 Berlin", part, StringComparison.Ordinal);
                Assert.Contains("https://nurture.example/impressum", part, StringComparison.Ordinal);
            }
        }
        var german = smtp.Messages.Single(m => m.To.Mailboxes.Single().Address == "anna@softwarehaus.example");
        var english = smtp.Messages.Single(m => m.To.Mailboxes.Single().Address == "ben@softwarehaus.example");
        Assert.Equal("Softwarehaus Team", german.From.Mailboxes.Single().Name);
        Assert.Equal("Nurture Test", english.From.Mailboxes.Single().Name); // no sender name for the solar track: the From setting's
        Assert.Contains("Impressum: https://nurture.example/impressum", german.TextBody, StringComparison.Ordinal);
        Assert.Contains("How solar pays off", english.TextBody, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Nurture:Email:ReplyTo")]
    [InlineData("Nurture:Email:Footer:Address")]
    [InlineData("Nurture:Email:Footer:ImpressumUrl")]
    public async Task Should_not_start_over_smtp_without_the_sender_identity(string missing)
    {
        using var smtp = new TestSmtpServer();

        var error = await Assert.ThrowsAsync<Cli.SettingsException>(() => MailRig.StartAsync(smtp, more: new Dictionary<string, string?> { [missing] = "" }));

        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
        Assert.Contains("required when sending over SMTP", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_track_opens_only_when_asked_and_then_record_emailOpened_once()
    {
        using var smtp = new TestSmtpServer();
        var (plain, plainMessage) = await SentAsync(smtp);
        await plain.DisposeAsync();
        using var smtp2 = new TestSmtpServer();
        await using var rig = await MailRig.StartAsync(smtp2, more: new Dictionary<string, string?> { ["Nurture:Email:TrackOpens"] = "true" });
        await rig.Apply(MailRig.Captured(Lead, MailRig.Monday, "anna@softwarehaus.example"));
        Assert.Equal(1, await rig.Dispatch.DispatchDueAsync());
        var html = Assert.Single(smtp2.Messages).HtmlBody!;
        var image = OpenImage().Match(html).Value;
        rig.Clock.Advance(TimeSpan.FromMinutes(2));

        using var browser = Browser();
        using var first = await browser.GetAsync(image);
        using var second = await browser.GetAsync(image);

        Assert.DoesNotContain("/o/", plainMessage.HtmlBody, StringComparison.Ordinal); // off by default
        Assert.Equal("image/gif", first.Content.Headers.ContentType!.MediaType);
        Assert.Equal(1, (await rig.Store.LoadLeadAsync(Lead))!.Lead.Activities[ActivityType.EmailOpened]);
        Assert.Equal(1, await ClickEvents(rig));
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+/o/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")]
    private static partial Regex OpenImage();

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")]
    private static partial Regex TrackedLink();
}
