using System.Data.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Messaging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Api;

public sealed record EventError(int Line, string Reason);

/// <summary>
/// The HTTP API: POST /api/events (the documented JSON form, one event or NDJSON; X-Api-Key), GET /api/leads/{id}
/// (X-Api-Key: it shows personal data), GET /api/funnel (aggregates only, what the dashboard reads) and /dashboard.
/// </summary>
public static class NurtureApi
{
    public static void MapNurtureApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/events", PostEventsAsync).AddEndpointFilter(RequireKey).DisableAntiforgery();
        app.MapGet("/api/leads/{id}", GetLeadAsync).AddEndpointFilter(RequireKey);
        app.MapGet("/api/funnel", async (LeadStore store, Definition definition, TimeProvider clock, CancellationToken cancel) =>
            Results.Json(await FunnelReport.ReadAsync(store, definition, clock.GetUtcNow(), cancel), LeadJson.Options));
        app.MapGet("/dashboard", () => Results.Content(Dashboard.Value, "text/html; charset=utf-8"));
    }

    private static readonly Lazy<string> Dashboard = new(() =>
    {
        using var stream = typeof(NurtureApi).Assembly.GetManifestResourceStream("Nurture.Worker.Api.dashboard.html")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    private static async ValueTask<object?> RequireKey(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var settings = context.HttpContext.RequestServices.GetService(typeof(ApiSettings)) as ApiSettings;
        var presented = context.HttpContext.Request.Headers["X-Api-Key"].FirstOrDefault();
        if (settings is null || !settings.Accepts(presented))
        {
            return Results.Json(new { error = presented is null ? "X-Api-Key: missing; send the API key (Nurture:Api:Key) in this header." : "X-Api-Key: not the API key." },
                statusCode: StatusCodes.Status401Unauthorized);
        }
        return await next(context);
    }

    /// <summary>
    /// All or nothing per request: any line that does not read gets its own error (line and field) and nothing is stored.
    /// A 202 comes only after the events are committed, so an accepted event survives the process dying right after.
    /// </summary>
    private static async Task<IResult> PostEventsAsync(HttpRequest request, LeadStore store, Definition definition, TimeProvider clock, ApiSettings settings,
        NurtureMetrics metrics, OutboxRelay relay, CancellationToken cancel)
    {
        var (body, tooLarge) = await ReadBodyAsync(request, settings.MaxBodyBytes, cancel);
        if (tooLarge) return Invalid([new EventError(0, $"body: larger than {settings.MaxBodyBytes} bytes; send fewer events per request (NDJSON batches).")]);
        if (body.AsSpan().Trim(" \t\r\n"u8).IsEmpty) return Invalid([new EventError(0, "body: empty; send one event as JSON, or several as NDJSON (one event per line).")]);

        var (events, errors) = Parse(body, request.ContentType);
        if (errors.Count > 0)
        {
            foreach (var _ in errors) metrics.Rejected("api");
            return Invalid(errors);
        }
        if (events.Count > settings.MaxEvents) return Invalid([new EventError(0, $"body: {events.Count} events; at most {settings.MaxEvents} per request.")]);
        var duplicatesInRequest = events.GroupBy(e => e.EventId).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();

        var applied = new List<AppliedEvent>(events.Count);
        try
        {
            foreach (var chunk in events.Chunk(500)) applied.AddRange(await store.ApplyWithRetryAsync(chunk, definition, clock.GetUtcNow(), cancel: cancel));
        }
        catch (DbException e)
        {
            // Batches before this one are committed; sending the request again is safe (event ids make it idempotent).
            return Results.Json(new { error = $"database: {e.Message}. Send the request again; events already stored count as duplicates." }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        metrics.Applied(applied);
        relay.Nudge();
        return Results.Accepted(value: new
        {
            accepted = applied.Where(a => !a.Duplicate).Select(a => a.Event.EventId).ToList(),
            duplicates = applied.Where(a => a.Duplicate).Select(a => a.Event.EventId).Concat(duplicatesInRequest).Distinct().ToList(),
        });
    }

    private static IResult Invalid(IReadOnlyList<EventError> errors) => Results.BadRequest(new { errors });

    private static async Task<(byte[] Body, bool TooLarge)> ReadBodyAsync(HttpRequest request, int max, CancellationToken cancel)
    {
        if (request.ContentLength > max) return ([], true);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancel)) > 0)
        {
            if (buffer.Length + read > max) return ([], true);
            buffer.Write(chunk, 0, read);
        }
        return (buffer.ToArray(), false);
    }

    /// <summary>application/json: one event (it may span lines); anything else: NDJSON, one event per non-empty line. Bytes go to EventJson's reader as they came.</summary>
    internal static (List<NurtureMessage> Events, List<EventError> Errors) Parse(byte[] body, string? contentType)
    {
        var events = new List<NurtureMessage>();
        var errors = new List<EventError>();
        var single = contentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) == true;
        ReadOnlyMemory<byte> rest = body;
        for (var number = 1; !rest.IsEmpty || number == 1; number++)
        {
            var end = single ? -1 : rest.Span.IndexOf((byte)'\n');
            var line = (end < 0 ? rest : rest[..end]).Span.Trim(" \t\r"u8);
            rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
            if (line.IsEmpty) continue;
            if (EventJson.TryParseIncoming(line, out var e, out var error)) events.Add(e);
            else errors.Add(new EventError(number, error));
        }
        return (events, errors);
    }

    private static async Task<IResult> GetLeadAsync(string id, LeadStore store, Definition definition, TimeProvider clock, CancellationToken cancel)
    {
        if (await store.LoadLeadAsync(id, cancel) is not { } stored) return Results.NotFound(new { error = $"id: no lead '{id}'." });
        var lead = stored.Lead;
        var now = clock.GetUtcNow();
        var score = Scoring.Score(lead, now, definition);
        return Results.Json(new
        {
            leadId = lead.Id,
            stage = lead.Stage,
            stageSince = lead.StageEnteredAt,
            furthest = lead.Furthest,
            firstMqlAt = lead.FirstMqlAt,
            score = new { total = score.Total, behaviour = score.Behaviour, fit = score.Fit, negative = score.Negative, asOf = now, explanation = score.Lines },
            qualifies = Lifecycle.Qualifies(lead, score, definition, now) is var (q, why) ? new { qualifies = q, reason = why } : null,
            definitionVersion = lead.DefinitionVersion,
            profile = lead.Profile,
            activities = lead.Activities.ToDictionary(a => Activities.NameOf(a.Key), a => a.Value),
            unsubscribed = lead.Unsubscribed,
            hardBounced = lead.HardBounced,
            erased = lead.Erased,
            revenue = lead.Revenue,
            history = await store.ReadHistoryRowsAsync(id, cancel),
            transitions = (await store.ReadTransitionsAsync(id, cancel)).Select(LeadJson.Of).ToList(),
            emails = await store.ReadStepsAsync(id, cancel),
        }, LeadJson.Options);
    }
}
