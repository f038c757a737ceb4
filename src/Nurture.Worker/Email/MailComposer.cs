using MimeKit;
using Nurture.Core;

namespace Nurture.Worker.Email;

/// <summary>
/// Builds one nurture email as it goes out: the step's template for the lead, its calls to action as signed redirects,
/// the sender identity (the track's sender name, Reply-To, the footer with postal address and Impressum in both
/// parts) and the unsubscribe headers. The dispatch sends what it builds; `preview` writes it to files.
/// </summary>
public sealed class MailComposer(
    Definition definition, NurtureTemplates templates, UnsubscribeTokens unsubscribeTokens, ClickTokens clickTokens,
    EmailSettings settings, SenderIdentity identity, ClickSettings clicks, PublicAddress address)
{
    /// <param name="email">The step's key: one per lead, track, enrolment and step. It names the Message-ID and ties clicks to this email.</param>
    public MimeMessage Compose(Lead lead, string track, int step, string template, Guid email, DateTimeOffset now)
    {
        var unsubscribe = address.Unsubscribe(unsubscribeTokens.Create(lead.Id));
        var from = identity.FromFor(track, settings.From);
        var language = templates.LanguageFor(lead.Profile.Language);
        // Under an experiment the lead gets its variant's links and subject line (its template and delay were set when the step was scheduled).
        var forLead = definition.Nurture.Tracks.FirstOrDefault(t => t.Name == track) is { } t && step < t.Steps.Count ? Experiments.For(t.Steps[step], lead.Id) : null;
        var links = (forLead?.Links ?? []).Select((link, i) => new EmailLink(link.TextIn(language), Tracked(new TrackedLink(lead.Id, email, track, step, i, link.Url, now)))).ToList();
        var rendered = templates.Render(template, lead, unsubscribe, from, track, step, links, forLead?.SubjectIn(language));

        var text = rendered.Text;
        var html = rendered.Html;
        if (identity.HasFooter)
        {
            text = text.TrimEnd() + "\n\n" + identity.FooterText(language) + "\n";
            html = BeforeBodyEnd(html, identity.FooterHtml(language));
        }
        if (clicks.TrackOpens)
        {
            var pixel = new Uri(address.BaseUrl, $"o/{clickTokens.Create(new TrackedLink(lead.Id, email, track, step, ClickTokens.Open, "", now))}");
            html = BeforeBodyEnd(html, $"""<img src="{pixel}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px;">""");
        }

        var message = new MimeMessage
        {
            // One id per lead and step, whichever worker sends it and however often: receivers can drop a resend.
            MessageId = $"nurture.{email:N}@{settings.From.Domain}",
            Subject = rendered.Subject,
            Date = now,
            Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody(),
        };
        message.From.Add(Copy(from));
        if (identity.ReplyTo is { } replyTo) message.ReplyTo.Add(Copy(replyTo));
        var to = MailboxAddress.Parse(lead.Profile.Email!);
        to.Name = DisplayName(lead.Profile);
        message.To.Add(to);
        message.Headers.Add("List-Unsubscribe", $"<{unsubscribe}>");
        message.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        return message;
    }

    /// <summary>
    /// A message's own copy of a configured address: an address list listens to the changes of the addresses added to
    /// it, so the one shared address from the settings held on to every message ever composed (17 KiB an email, found
    /// in a heap dump of a dispatch of 15,000).
    /// </summary>
    private static MailboxAddress Copy(MailboxAddress address) => new(address.Encoding, address.Name, address.Route, address.Address);

    private string Tracked(TrackedLink link) => new Uri(address.BaseUrl, $"r/{clickTokens.Create(link)}").ToString();

    private static string BeforeBodyEnd(string html, string insert)
    {
        var end = html.LastIndexOf("</body>", StringComparison.OrdinalIgnoreCase);
        return end < 0 ? html + insert : html[..end] + insert + "\n" + html[end..];
    }

    /// <summary>The recipient's name on one line; MimeKit encodes it, so lead data cannot start a header.</summary>
    private static string DisplayName(LeadProfile profile) =>
        string.Join(' ', $"{profile.FirstName} {profile.LastName}".Split(['\r', '\n', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
}

/// <summary>A call to action as the template places it: its text in the email's language and the tracked URL.</summary>
public sealed record EmailLink(string Text, string Url);
