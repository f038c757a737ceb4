using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
            if (status is not null && !Statuses.Contains(status)) return Results.BadRequest(new { error = $"status: '{status}' is not one of {string.Join(", ", Statuses)}." });
            if (limit is < 1 or > 1000) return Results.BadRequest(new { error = $"limit: {limit} must be from 1 to 1000." });
            return Results.Ok(new
            {
                counts = await store.CountByStatusAsync(cancel),
                deliveries = await store.ListAsync(status, limit ?? 100, cancel),
            });
        }).AddEndpointFilter(NurtureApi.RequireKey);
    }
}
