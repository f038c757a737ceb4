using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Worker.Tests.Email;

namespace Nurture.Worker.Tests.Api;

/// <summary>/openapi/v1.json against the endpoints the app really has, and every error answered as RFC 9457 problem details.</summary>
public class When_a_client_reads_the_api_description
{
    [Fact]
    public async Task Should_describe_every_endpoint_of_the_app_with_a_summary_responses_and_an_example()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();

        using var document = JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json"));

        var paths = document.RootElement.GetProperty("paths");
        var endpoints = rig.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .Where(e => e.RoutePattern.RawText != "/openapi/{documentName}.json")
            .SelectMany(e => (e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => ("/" + e.RoutePattern.RawText!.TrimStart('/'), m.ToLowerInvariant())))
            .ToList();
        Assert.Contains(("/api/events", "post"), endpoints);
        Assert.Contains(("/health/ready", "get"), endpoints);
        Assert.Contains(("/metrics", "get"), endpoints);
        foreach (var (path, method) in endpoints)
        {
            Assert.True(paths.TryGetProperty(path, out var item), $"{path} is an endpoint of the app but not in /openapi/v1.json");
            Assert.True(item.TryGetProperty(method, out var operation), $"{method.ToUpperInvariant()} {path} is not in /openapi/v1.json");
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("operationId").GetString()), $"{method} {path}: operationId");
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("summary").GetString()), $"{method} {path}: summary");
            Assert.True(operation.GetProperty("responses").EnumerateObject().Any(), $"{method} {path}: responses");
            Assert.True(operation.GetRawText().Contains("\"example\"", StringComparison.Ordinal), $"{method.ToUpperInvariant()} {path} has no example");
        }
        // Nothing in the document that the app does not answer.
        var documented = paths.EnumerateObject().SelectMany(p => p.Value.EnumerateObject().Select(o => (p.Name, o.Name))).ToList();
        Assert.All(documented, d => Assert.Contains(d, endpoints));

        // Every schema reference resolves, and the protected operations name the ApiKey scheme.
        var schemas = document.RootElement.GetProperty("components").GetProperty("schemas");
        foreach (var reference in References(document.RootElement))
        {
            Assert.StartsWith("#/components/schemas/", reference, StringComparison.Ordinal);
            Assert.True(schemas.TryGetProperty(reference["#/components/schemas/".Length..], out _), reference);
        }
        var scheme = document.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("ApiKey");
        Assert.Equal("X-Api-Key", scheme.GetProperty("name").GetString());
        Assert.Equal("header", scheme.GetProperty("in").GetString());
        Assert.True(paths.GetProperty("/api/events").GetProperty("post").GetProperty("security")[0].TryGetProperty("ApiKey", out _));
        Assert.True(paths.GetProperty("/api/leads/{id}").GetProperty("get").GetProperty("security")[0].TryGetProperty("ApiKey", out _));
        Assert.False(paths.GetProperty("/api/funnel").GetProperty("get").TryGetProperty("security", out _));

        // The request example is an event the API accepts as it stands.
        var example = paths.GetProperty("/api/events").GetProperty("post").GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("example").GetRawText();
        var posted = await http.PostAsync("/api/events", new StringContent(example, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
    }

    private static IEnumerable<string> References(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => p.Name == "$ref" ? [p.Value.GetString()!] : References(p.Value)),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(References),
        _ => [],
    };

    [Fact]
    public async Task Should_answer_every_error_as_problem_details_with_the_line_and_field_where_one_applies()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();
        using var anonymous = new HttpClient { BaseAddress = http.BaseAddress };
        const string Bad = """{"type":"LeadActivityRecorded","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000002","leadId":"x","occurredAt":"2026-03-02T08:05:00Z","activity":"teleported"}""";
        const string Good = """{"type":"LeadActivityRecorded","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000003","leadId":"x","occurredAt":"2026-03-02T08:05:00Z","activity":"trialStarted"}""";

        var invalid = await http.PostAsync("/api/events", new StringContent(Good + "\n" + Bad + "\n", Encoding.UTF8, "application/x-ndjson"));
        var noKey = await anonymous.GetAsync("/api/leads/x");
        var noLead = await http.GetAsync("/api/leads/nobody");
        var noRoute = await http.GetAsync("/api/nothing-here");

        var problem = await Problem(invalid, 400);
        var error = Assert.Single(problem.GetProperty("errors").EnumerateArray());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal("activity", error.GetProperty("field").GetString());
        Assert.StartsWith("1 of 2 lines could not be stored; the others are stored (see accepted). First: line 2: activity", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("5f0c1c4e-1111-4a4a-9b9b-000000000003", Assert.Single(problem.GetProperty("accepted").EnumerateArray()).GetString());
        Assert.StartsWith("X-Api-Key: missing", (await Problem(noKey, 401)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("ApiKey header=\"X-Api-Key\"", noKey.Headers.WwwAuthenticate.ToString());
        Assert.Equal("id: no lead 'nobody'.", (await Problem(noLead, 404)).GetProperty("detail").GetString());
        await Problem(noRoute, 404);
    }

    private static async Task<JsonElement> Problem(HttpResponseMessage response, int status)
    {
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(status, root.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("title").GetString()));
        Assert.True(root.TryGetProperty("type", out _));
        return root;
    }
}
