using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Leads;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Email;

/// <summary>
/// The unsubscribe link every nurture email carries. POST (RFC 8058 one-click: mail clients post
/// "List-Unsubscribe=One-Click"; the page's button posts too) records LeadUnsubscribed once; GET only shows a page
/// with the button, because link scanners follow GET links.
/// </summary>
public static class Unsubscribe
{
    public static void MapUnsubscribe(this IEndpointRouteBuilder app)
    {
        app.MapGet("/unsubscribe/{token}", (string token, UnsubscribeTokens tokens) => tokens.Verify(token) is null
            ? Page("This unsubscribe link is not valid.", "Diese Abmeldeverbindung ist ungültig.", null, StatusCodes.Status400BadRequest)
            : Page("Unsubscribe from these emails?", "Von diesen E-Mails abmelden?", token, StatusCodes.Status200OK));

        app.MapPost("/unsubscribe/{token}", async (string token, UnsubscribeTokens tokens, LeadEventHandler handler, LeadStore store, TimeProvider clock, NurtureMetrics metrics,
            CancellationToken cancel) =>
        {
            if (tokens.Verify(token) is not { } leadId)
            {
                return Page("This unsubscribe link is not valid.", "Diese Abmeldeverbindung ist ungültig.", null, StatusCodes.Status400BadRequest);
            }
            // A signed link for a lead Nurture never stored (another database, a lead long gone): nothing is mailed to it,
            // so nothing is recorded either; a lead row made here would count in the funnel. The person is answered alike.
            if (await store.LoadLeadAsync(leadId, cancel) is null) return Page(Done.English, Done.German, null, StatusCodes.Status200OK);
            var now = clock.GetUtcNow();
            // One event id per lead: a second click (or a mail client's retry) is a duplicate, not a second unsubscribe.
            var unsubscribed = new LeadUnsubscribed { EventId = Lifecycle.DerivedId(Guid.Empty, $"unsubscribe:{leadId}"), LeadId = leadId, OccurredAt = now, Channel = "list-unsubscribe" };
            var applied = await handler.HandleNowAsync([unsubscribed], "unsubscribe", cancel);
            if (applied[0].Duplicate) return Page("You were already unsubscribed.", "Sie waren bereits abgemeldet.", null, StatusCodes.Status200OK);
            metrics.Unsubscribed();
            return Page(Done.English, Done.German, null, StatusCodes.Status200OK);
        }).DisableAntiforgery();
    }

    private static readonly (string English, string German) Done =
        ("You are unsubscribed. You will get no more of these emails.", "Sie sind abgemeldet und erhalten keine weiteren dieser E-Mails.");

    private static IResult Page(string english, string german, string? token, int status)
    {
        var form = token is null ? "" : $"""<form method="post" action="/unsubscribe/{WebUtility.HtmlEncode(token)}"><button type="submit">Unsubscribe / Abmelden</button></form>""";
        var html = $"""
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Nurture</title></head>
            <body style="font-family:sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem"><p>{WebUtility.HtmlEncode(english)}</p><p lang="de">{WebUtility.HtmlEncode(german)}</p>{form}</body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", statusCode: status);
    }
}
