using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Nurture.Contracts;

namespace Nurture.Worker.Api;

/// <summary>What POST /api/events answers with 202: the event ids stored now, and those it already had.</summary>
public sealed record EventsAccepted(IReadOnlyList<Guid> Accepted, IReadOnlyList<Guid> Duplicates);

/// <summary>
/// The OpenAPI document at /openapi/v1.json (Microsoft.AspNetCore.OpenApi): the endpoints' own metadata, the API-key
/// scheme, the health and metrics endpoints (which are not route handlers), and an example for every operation.
/// </summary>
public static class NurtureOpenApi
{
    public const string Document = "v1";

    private const string CapturedExample = """{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","leadId":"lead-00001","occurredAt":"2026-03-02T08:00:00Z","email":"anna@softwarehaus.example","firstName":"Anna","industry":"software","companySize":50,"country":"DE","timeZone":"Europe/Berlin","language":"de","source":"webinar","consent":true}""";

    public static IServiceCollection AddNurtureOpenApi(this IServiceCollection services) => services.AddOpenApi(Document, o =>
    {
        o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Nurture",
                Version = typeof(NurtureOpenApi).Assembly.GetName().Version?.ToString(3) ?? "1.0.0",
                Description = "Lead events in; MQL decisions, nurture emails and what an MQL is worth out. Errors are RFC 9457 problem details (application/problem+json).",
                License = new OpenApiLicense { Name = "Apache-2.0", Identifier = "Apache-2.0" },
            };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[ApiKeyAuthentication.SchemeName] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.ApiKey,
                In = ParameterLocation.Header,
                Name = ApiKeyAuthentication.Header,
                Description = "The worker's API key (Nurture:Api:Key; generated into nurture-api.key beside an embedded SQLite database when not set).",
            };
            AddHealthAndMetrics(document);
            document.Tags ??= new HashSet<OpenApiTag>();
            document.Tags.Add(new OpenApiTag { Name = "Operations", Description = "Health checks and Prometheus metrics." });
            document.Tags.Add(new OpenApiTag { Name = "Email", Description = "The one-click unsubscribe pages nurture emails link to." });
            return Task.CompletedTask;
        });
        o.AddOperationTransformer((operation, context, _) =>
        {
            var metadata = context.Description.ActionDescriptor.EndpointMetadata;
            if (metadata.OfType<IAuthorizeData>().Any())
            {
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(ApiKeyAuthentication.SchemeName, context.Document)] = [] }];
            }
            foreach (var (status, response) in operation.Responses ?? [])
            {
                if (response.Content?.TryGetValue("application/problem+json", out var problem) == true) problem.Example ??= ProblemExample(status, context.Description.RelativePath);
            }
            if (context.Description.RelativePath == "unsubscribe/{token}") DescribeUnsubscribe(operation, context.Description.HttpMethod ?? "GET", context.Document);
            if (context.Description.RelativePath is "r/{token}" or "o/{token}" or "link-not-valid") DescribeTracking(operation, context.Description.RelativePath, context.Description.HttpMethod ?? "GET", context.Document);
            foreach (var parameter in (operation.Parameters ?? []).OfType<OpenApiParameter>())
            {
                parameter.Example ??= parameter.Name switch
                {
                    "id" => "lead-00001",
                    "token" => "bGVhZC0wMDAwMQ.7Qm3kT0cLw",
                    _ => null,
                };
            }
            return Task.CompletedTask;
        });
    });

    /// <summary>POST /api/events: one event as application/json, or many as NDJSON (application/x-ndjson), with examples.</summary>
    public static Task EventsRequest(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancel)
    {
        var schema = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "One event in the documented JSON form (schemas/<type>.schema.json); 'type' says which.",
            Required = new HashSet<string> { "type", "eventId", "occurredAt" },
            Properties = new Dictionary<string, IOpenApiSchema>
            {
                ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Enum = [.. EventJson.Incoming.Select(t => (JsonNode)JsonValue.Create(t.Name))] },
                ["eventId"] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "uuid", Description = "Makes posting again safe: a known id counts as a duplicate." },
                ["occurredAt"] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "date-time" },
                ["leadId"] = new OpenApiSchema { Type = JsonSchemaType.String },
            },
        };
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Description = "application/json: one event (it may span lines). Anything else, e.g. application/x-ndjson: one event per line. Each line stands alone: the good lines are stored, each bad one is named in the 400 (at most 100 listed).",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new() { Schema = schema, Example = JsonNode.Parse(CapturedExample) },
                ["application/x-ndjson"] = new()
                {
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "Events in the JSON form above, one per line." },
                    Example = JsonValue.Create(CapturedExample + "\n" + """{"type":"LeadActivityRecorded","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000002","leadId":"lead-00001","occurredAt":"2026-03-02T08:05:00Z","activity":"trialStarted"}""" + "\n"),
                },
            },
        };
        SetExample(operation, "202", """{"accepted":["5f0c1c4e-1111-4a4a-9b9b-000000000001"],"duplicates":[]}""");
        return Task.CompletedTask;
    }

    /// <summary>GET /api/leads/{id}: an example of the lead's answer (abridged).</summary>
    public static Task LeadExample(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancel)
    {
        SetExample(operation, "200", """{"leadId":"lead-00001","stage":"Mql","score":{"total":62,"behaviour":50,"fit":12,"negative":0,"asOf":"2026-03-02T08:10:00Z","explanation":[{"rule":"activity demoRequested","points":30}]},"unsubscribed":false}""");
        return Task.CompletedTask;
    }

    /// <summary>GET /api/funnel: an example of the funnel answer (abridged).</summary>
    public static Task FunnelExample(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancel)
    {
        SetExample(operation, "200", """{"asOf":"2026-11-25T10:00:00Z","definitionVersion":"1","funnel":[{"stage":"Lead","reached":240,"now":93,"conversionFromPrevious":null},{"stage":"Mql","reached":147,"now":21,"conversionFromPrevious":0.6125}],"leadsPerStage":{"Lead":93,"Mql":21},"mqlValue":{"source":null,"value":96.4,"valueLow":71.2,"valueHigh":125.9,"currency":"EUR"},"handOffBreaches":3}""");
        return Task.CompletedTask;
    }

    /// <summary>GET /api/experiments: one experiment, B ahead but not yet decided.</summary>
    public static Task ExperimentsExample(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancel)
    {
        SetExample(operation, "200", """{"asOf":"2026-11-25T10:00:00Z","definitionVersion":"2026-11.3","method":"asymptotic confidence sequence …","experiments":[{"name":"software-welcome-subject","track":"software","step":0,"judge":"mql","windowDays":30,"alpha":0.05,"variants":[{"variant":"A","weight":1,"leads":412,"waiting":37,"mqls":41,"customers":6,"revenue":52300,"clicked":88,"mqlRate":{"value":0.0995,"low":0.0611,"high":0.1379},"customerRate":{"value":0.0146,"low":0,"high":0.0321},"revenuePerLead":{"value":126.94,"low":0,"high":301.2},"clickRate":0.2136},{"variant":"B","weight":1,"leads":398,"waiting":41,"mqls":57,"customers":7,"revenue":61000,"clicked":91,"mqlRate":{"value":0.1432,"low":0.0981,"high":0.1883},"customerRate":{"value":0.0176,"low":0,"high":0.0371},"revenuePerLead":{"value":153.27,"low":0,"high":344.8},"clickRate":0.2286}],"differences":[{"variant":"B","control":"A","judged":"mql","mqlRate":{"value":0.0437,"low":-0.0148,"high":0.1022},"customerRate":{"value":0.003,"low":-0.022,"high":0.028},"revenuePerLead":{"value":26.33,"low":-231.5,"high":284.2}}],"winner":null,"verdict":"no winner yet: B − A: +4.4 pp (95 %: -1.5 pp to +10.2 pp) includes zero"}]}""");
        return Task.CompletedTask;
    }

    /// <summary>GET /dashboard: the page's example is its start.</summary>
    public static Task DashboardExample(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancel)
    {
        SetExample(operation, "200", JsonValue.Create("<!DOCTYPE html><html lang=\"en\">…</html>"), "text/html");
        return Task.CompletedTask;
    }

    /// <summary>The one-click unsubscribe pages (RFC 8058) are for people: HTML, not problem details, even for a bad link.</summary>
    private static void DescribeUnsubscribe(OpenApiOperation operation, string method, OpenApiDocument? document)
    {
        var post = method.Equals("POST", StringComparison.OrdinalIgnoreCase);
        operation.OperationId = post ? "PostUnsubscribe" : "GetUnsubscribe";
        operation.Summary = post ? "Unsubscribe (one click, RFC 8058: List-Unsubscribe=One-Click)" : "The unsubscribe page a nurture email links to";
        operation.Tags = new HashSet<OpenApiTagReference> { new("Email", document) };
        OpenApiResponse Page(string description, string html) => new()
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType> { ["text/html"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String }, Example = JsonValue.Create(html) } },
        };
        operation.Responses = new OpenApiResponses
        {
            ["200"] = Page("A page for people (English and German).", post ? "<p>You are unsubscribed. You will get no more of these emails.</p>" : "<p>Unsubscribe from these emails?</p><form method=\"post\">…</form>"),
            ["400"] = Page("The link is not valid (a page for people, not problem details).", "<p>This unsubscribe link is not valid.</p>"),
        };
    }

    /// <summary>The tracked links and the open pixel of nurture emails, and the page a bad link lands on: for mail clients and people.</summary>
    private static void DescribeTracking(OpenApiOperation operation, string path, string method, OpenApiDocument? document)
    {
        var head = method.Equals("HEAD", StringComparison.OrdinalIgnoreCase);
        var (id, summary) = path switch
        {
            "r/{token}" => ("Click", "A link in a nurture email: records emailClicked (a HEAD or a click right after delivery as a machine click) and redirects to the target"),
            "o/{token}" => ("Open", "The open-tracking image of a nurture email (when Nurture:Email:TrackOpens is on): records emailOpened"),
            _ => ("LinkNotValid", "The page a forged or altered link lands on"),
        };
        operation.OperationId = (head ? "Head" : "Get") + id;
        operation.Summary = summary;
        operation.Tags = new HashSet<OpenApiTagReference> { new("Email", document) };
        OpenApiResponse Response(string description, string mediaType, string example) => new()
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType> { [mediaType] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String }, Example = JsonValue.Create(example) } },
        };
        operation.Responses = path switch
        {
            "r/{token}" => new OpenApiResponses
            {
                ["302"] = Response("On to the link's target (Location), or to /link-not-valid for a token that does not verify.", "text/plain", "Location: https://example.com/webinar"),
            },
            "o/{token}" => new OpenApiResponses { ["200"] = Response("A transparent 1×1 GIF.", "image/gif", "GIF89a…") },
            _ => new OpenApiResponses { ["404"] = Response("A page for people (English and German).", "text/html", "<p>This link is not valid.</p>") },
        };
    }

    /// <summary>GET /api/webhooks/deliveries: the delivery log.</summary>
    public static Task WebhookDeliveriesExample(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancel)
    {
        SetExample(operation, "200", """{"counts":{"delivered":41,"retrying":2,"given_up":0},"deliveries":[{"id":43,"subscription":"crm","messageId":"5f0c1c4e-1111-4a4a-9b9b-000000000043","type":"LeadHandedToSales","leadId":"lead-00011","status":"retrying","attempts":3,"nextAttemptAt":"2026-03-02T08:12:00Z","lastStatusCode":503}]}""");
        return Task.CompletedTask;
    }

    private static void SetExample(OpenApiOperation operation, string status, string json) => SetExample(operation, status, JsonNode.Parse(json)!);

    private static void SetExample(OpenApiOperation operation, string status, JsonNode example, string mediaType = "application/json")
    {
        if (operation.Responses?.TryGetValue(status, out var response) != true || response is not OpenApiResponse described) return;
        described.Content ??= new Dictionary<string, OpenApiMediaType>();
        if (described.Content.Count == 0) described.Content[mediaType] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = mediaType == "application/json" ? JsonSchemaType.Object : JsonSchemaType.String } };
        foreach (var media in described.Content.Values) media.Example = example.DeepClone();
    }

    private static JsonNode ProblemExample(string status, string? path) => status switch
    {
        "400" => JsonNode.Parse("""{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.1","title":"Bad Request","status":400,"detail":"1 of 3 lines could not be stored; the others are stored (see accepted). First: line 2: activity: 'teleported' is not an activity.","errors":[{"line":2,"field":"activity","reason":"activity: 'teleported' is not an activity."}],"errorsNotListed":0,"accepted":["5f0c1c4e-1111-4a4a-9b9b-000000000001","5f0c1c4e-1111-4a4a-9b9b-000000000003"],"duplicates":[]}""")!,
        "401" => JsonNode.Parse("""{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.2","title":"Unauthorized","status":401,"detail":"X-Api-Key: missing; send the API key (Nurture:Api:Key) in this header."}""")!,
        "404" => JsonNode.Parse("""{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.5","title":"Not Found","status":404,"detail":"id: no lead 'lead-00001'."}""")!,
        "503" => JsonNode.Parse("""{"type":"https://tools.ietf.org/html/rfc9110#section-15.6.4","title":"Service Unavailable","status":503,"detail":"database: the connection was refused. Send the request again; events already stored count as duplicates."}""")!,
        _ => JsonNode.Parse($$"""{"title":"Error","status":{{status}},"detail":"{{path}}"}""")!,
    };

    /// <summary>Health checks and /metrics are middleware endpoints, not route handlers: described here by hand.</summary>
    private static void AddHealthAndMetrics(OpenApiDocument document)
    {
        document.Paths ??= [];
        OpenApiPathItem Get(string id, string tag, string summary, string description, string mediaType, JsonNode example, string? unavailable = null)
        {
            var responses = new OpenApiResponses
            {
                ["200"] = new OpenApiResponse { Description = "OK", Content = new Dictionary<string, OpenApiMediaType> { [mediaType] = new() { Schema = new OpenApiSchema { Type = mediaType == "application/json" ? JsonSchemaType.Object : JsonSchemaType.String }, Example = example } } },
            };
            if (unavailable is not null) responses["503"] = new OpenApiResponse { Description = unavailable, Content = new Dictionary<string, OpenApiMediaType> { [mediaType] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.Object }, Example = JsonNode.Parse("""{"status":"Unhealthy","checks":{"database":{"status":"Unhealthy","description":"PostgreSql does not answer: connection refused"}}}""") } } };
            return new OpenApiPathItem
            {
                Operations = new Dictionary<HttpMethod, OpenApiOperation>
                {
                    [HttpMethod.Get] = new() { OperationId = id, Summary = summary, Description = description, Tags = new HashSet<OpenApiTagReference> { new(tag, document) }, Responses = responses },
                },
            };
        }
        document.Paths["/health/live"] = Get("GetHealthLive", "Operations", "Liveness", "The process answers; no dependency is checked.", "application/json", JsonNode.Parse("""{"status":"Healthy","checks":{}}""")!);
        document.Paths["/health/ready"] = Get("GetHealthReady", "Operations", "Readiness", "The database and the bus answer (what a load balancer or the container's HEALTHCHECK asks).", "application/json",
            JsonNode.Parse("""{"status":"Healthy","checks":{"database":{"status":"Healthy","description":"Sqlite answers"},"masstransit-bus":{"status":"Healthy","description":"Ready"}}}""")!, "A dependency does not answer.");
        document.Paths["/metrics"] = Get("GetMetrics", "Operations", "Prometheus metrics", "OpenTelemetry metrics in the Prometheus text format.", "text/plain",
            JsonValue.Create("# TYPE nurture_leads gauge\nnurture_leads{stage=\"Lead\"} 93\n"));
    }
}
