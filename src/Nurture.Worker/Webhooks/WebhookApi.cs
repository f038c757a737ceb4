using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Nurture.Worker.Api;

namespace Nurture.Worker.Webhooks;

/// <summary>GET /api/webhooks/deliveries (X-Api-Key): the delivery log, newest first, optionally by status.</summary>
public static class WebhookApi
{
    private static readonly string[] Statuses = ["pending", "retrying", "delivered", "given_up"];

    public static void MapWebhookApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/webhooks/deliveries", async (string? status, int? limit, WebhookStore store, CancellationToken cancel) =>
        {
            if (status is not null && !Statuses.Contains(status)) return NurtureApi.Problem(StatusCodes.Status400BadRequest, $"status: '{status}' is not one of {string.Join(", ", Statuses)}.");
            if (limit is < 1 or > 1000) return NurtureApi.Problem(StatusCodes.Status400BadRequest, $"limit: {limit} must be from 1 to 1000.");
            return Results.Ok(new
            {
                counts = await store.CountByStatusAsync(cancel),
                deliveries = await store.ListAsync(status, limit ?? 100, cancel),
            });
        }).RequireAuthorization(ApiKeyAuthentication.ReadLeads)
            .WithName("GetWebhookDeliveries").WithTags("Webhooks").WithSummary("The webhook delivery log: counts per status and the latest deliveries")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .AddOpenApiOperationTransformer(NurtureOpenApi.WebhookDeliveriesExample);
    }
}
