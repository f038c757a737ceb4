using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Leads;
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
        app.MapPost("/api/events", PostEventsAsync).RequireAuthorization(ApiKeyAuthentication.WriteEvents).DisableAntiforgery()
            .WithName("PostEvents").WithTags("Events").WithSummary("Store lead events")
            .WithDescription("One event (application/json) or many (NDJSON). Stored before the 202; a known event id counts as a duplicate, so posting again is safe.")
            .Produces<EventsAccepted>(StatusCodes.Status202Accepted).ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable).AddOpenApiOperationTransformer(NurtureOpenApi.EventsRequest);
        app.MapGet("/api/leads/{id}", GetLeadAsync).RequireAuthorization(ApiKeyAuthentication.ReadLeads)
            .WithName("GetLead").WithTags("Leads").WithSummary("One lead: stage, score with its explanation, history, transitions and emails")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound)
            .AddOpenApiOperationTransformer(NurtureOpenApi.LeadExample);
        app.MapGet("/api/funnel", async (LeadStore store, Definition definition, TimeProvider clock, CancellationToken cancel) =>
            Results.Json(await FunnelReport.ReadAsync(store, definition, clock.GetUtcNow(), cancel), LeadJson.Options))
            .WithName("GetFunnel").WithTags("Funnel").WithSummary("The funnel, conversion and MQL value per source (aggregates only: what the dashboard reads)")
            .Produces<FunnelReport>().AddOpenApiOperationTransformer(NurtureOpenApi.FunnelExample);
        app.MapGet("/api/experiments", async (LeadStore store, Definition definition, TimeProvider clock, CancellationToken cancel) =>
            Results.Json(await ExperimentReport.ReadAsync(store, definition, clock.GetUtcNow(), cancel), LeadJson.Options))
            .WithName("GetExperiments").WithTags("Funnel").WithSummary("Each nurture experiment: per variant the MQL rate, customer rate and revenue per lead with always-valid intervals, the difference to the control, and the verdict")
            .WithDescription("Aggregates only. A lead counts once the experiment's window after its step is over; a winner is named only when the interval of its difference to the control, on the outcome the experiment is judged by, excludes zero (a confidence sequence: valid however often it is read). Clicks are shown, never the judge.")
            .Produces<ExperimentReport>().AddOpenApiOperationTransformer(NurtureOpenApi.ExperimentsExample);
        app.MapGet("/dashboard", () => Results.Content(Dashboard.Value, "text/html; charset=utf-8"))
            .WithName("GetDashboard").WithTags("Funnel").WithSummary("The dashboard page").Produces(StatusCodes.Status200OK, contentType: "text/html")
            .AddOpenApiOperationTransformer(NurtureOpenApi.DashboardExample);
    }

    private static readonly Lazy<string> Dashboard = new(() =>
    {
        using var stream = typeof(NurtureApi).Assembly.GetManifestResourceStream("Nurture.Worker.Api.dashboard.html")!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>At most this many errors are listed in one answer; "errorsNotListed" counts the rest.</summary>
    internal const int MaxErrorsListed = 100;

    /// <summary>
    /// Each line stands alone: the lines that read and that the database takes are stored, each other one is named in a 400
    /// (its line and field). Only a body that cannot be taken as a whole (too large, empty, too many events, an unknown
    /// mode) stores nothing. A 202 or 400 comes only after the events are committed, so an accepted event survives the
    /// process dying right after; posting the same request again is safe (event ids make it idempotent).
    /// </summary>
    private static async Task<IResult> PostEventsAsync(HttpRequest request, LeadEventHandler handler, ApiSettings settings, NurtureMetrics metrics, CancellationToken cancel)
    {
        var (body, tooLarge) = await ReadBodyAsync(request, settings.MaxBodyBytes, cancel);
        if (tooLarge) return Invalid([new EventError(0, $"body: larger than {settings.MaxBodyBytes} bytes; send fewer events per request (NDJSON batches).")]);
        if (body.AsSpan().Trim(" \t\r\n"u8).IsEmpty) return Invalid([new EventError(0, "body: empty; send one event as JSON, or several as NDJSON (one event per line).")]);

        var (lines, errors) = ParseNumbered(body, request.ContentType);
        if (lines.Count > settings.MaxEvents) return Invalid([new EventError(0, $"body: {lines.Count} events; at most {settings.MaxEvents} per request.")]);
        // ?mode=history records events moved in from another tool without nurturing or announcing them.
        var modeText = request.Query["mode"].ToString();
        if (modeText is not ("" or "live" or "history")) return Invalid([new EventError(0, $"mode: '{modeText}' is not a mode; use live (the default) or history.")]);
        var mode = modeText == "history" ? EventMode.History : EventMode.Live;
        foreach (var _ in errors) metrics.Rejected("api");
        var events = lines.Select(l => l.Event).ToList();
        var duplicatesInRequest = events.GroupBy(e => e.EventId).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();

        var applied = new List<AppliedEvent>(events.Count);
        try
        {
            foreach (var chunk in events.Chunk(500)) applied.AddRange(await handler.HandleNowAsync(chunk, "api", cancel, mode));
        }
        catch (Exception e) when (LeadEventHandler.MayPass(e))
        {
            // Batches before this one are committed; sending the request again is safe (event ids make it idempotent).
            return Problem(StatusCodes.Status503ServiceUnavailable, "database: not available just now. Send the request again; events already stored count as duplicates.");
        }
        // A value the database refuses for good is named at its line like a reading error; the reason is in our words, never the provider's.
        var lineOf = lines.GroupBy(l => l.Event.EventId).ToDictionary(g => g.Key, g => g.First().Line);
        errors.AddRange(applied.Where(a => a.Refused is not null).Select(a => new EventError(lineOf.GetValueOrDefault(a.Event.EventId), "$: " + a.Refused)));
        var accepted = applied.Where(a => !a.Duplicate && a.Refused is null).Select(a => a.Event.EventId).ToList();
        var duplicates = applied.Where(a => a.Duplicate).Select(a => a.Event.EventId).Concat(duplicatesInRequest).Distinct().ToList();
        if (errors.Count == 0) return Results.Accepted(value: new { accepted, duplicates });

        errors.Sort((a, b) => a.Line.CompareTo(b.Line));
        var detail = accepted.Count + duplicates.Count == 0
            ? errors.Count == 1 ? Where(errors[0]) : $"{errors.Count} lines could not be stored; nothing was stored. First: {Where(errors[0])}"
            : $"{errors.Count} of {errors.Count + lines.Count - applied.Count(a => a.Refused is not null)} lines could not be stored; the others are stored (see accepted). First: {Where(errors[0])}";
        return Problem(StatusCodes.Status400BadRequest, detail, new Dictionary<string, object?>
        {
            ["errors"] = Listed(errors),
            ["errorsNotListed"] = Math.Max(0, errors.Count - MaxErrorsListed),
            ["accepted"] = accepted,
            ["duplicates"] = duplicates,
        });
    }

    private static IResult Invalid(List<EventError> errors) => Problem(StatusCodes.Status400BadRequest, Where(errors[0]), errors);

    private static List<object> Listed(IReadOnlyList<EventError> errors) =>
        errors.Take(MaxErrorsListed).Select(e => (object)new { line = e.Line, field = e.Reason.Split(':')[0], reason = e.Reason }).ToList();

    /// <summary>
    /// Every error answer: RFC 9457 problem details (application/problem+json). Errors about the body list each line at fault
    /// with its field in "errors" (line 0: the body as a whole).
    /// </summary>
    internal static IResult Problem(int status, string detail, IReadOnlyList<EventError>? errors = null) => Results.Problem(
        detail: detail,
        statusCode: status,
        extensions: errors is null ? null : new Dictionary<string, object?> { ["errors"] = Listed(errors) });

    internal static IResult Problem(int status, string detail, Dictionary<string, object?> extensions) => Results.Problem(detail: detail, statusCode: status, extensions: extensions);

    private static string Where(EventError error) => error.Line == 0 ? error.Reason : $"line {error.Line}: {error.Reason}";

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
        var (lines, errors) = ParseNumbered(body, contentType);
        return (lines.Select(l => l.Event).ToList(), errors);
    }

    /// <summary>As <see cref="Parse"/>, each event with its line number.</summary>
    internal static (List<(int Line, NurtureMessage Event)> Events, List<EventError> Errors) ParseNumbered(byte[] body, string? contentType)
    {
        var events = new List<(int, NurtureMessage)>();
        var errors = new List<EventError>();
        var single = contentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) == true;
        ReadOnlyMemory<byte> rest = body;
        for (var number = 1; !rest.IsEmpty || number == 1; number++)
        {
            var end = single ? -1 : rest.Span.IndexOf((byte)'\n');
            var line = (end < 0 ? rest : rest[..end]).Span.Trim(" \t\r"u8);
            rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
            if (line.IsEmpty) continue;
            if (EventJson.TryParseIncoming(line, out var e, out var error)) events.Add((number, e));
            else errors.Add(new EventError(number, error));
        }
        return (events, errors);
    }

    private static async Task<IResult> GetLeadAsync(string id, LeadStore store, Definition definition, TimeProvider clock, CancellationToken cancel)
    {
        if (await store.LoadLeadAsync(id, cancel) is not { } stored) return Problem(StatusCodes.Status404NotFound, $"id: no lead '{id}'.");
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
