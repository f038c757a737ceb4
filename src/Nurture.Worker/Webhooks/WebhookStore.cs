using System.Text.Json;
using Dapper;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Webhooks;

/// <summary>A delivery as the log shows it (GET /api/webhooks/deliveries): no payload, no response body.</summary>
public sealed class WebhookDeliveryRow
{
    public long Id { get; set; }
    public string Subscription { get; set; } = "";
    public long OutboxId { get; set; }
    public Guid MessageId { get; set; }
    public string Type { get; set; } = "";
    /// <summary>The lead id (deliveries of one lead go out in order), or empty for messages about no one lead.</summary>
    public string OrderKey { get; set; } = "";
    /// <summary>pending, retrying, delivered or given_up.</summary>
    public string Status { get; set; } = "";
    public int Attempts { get; set; }
    public DateTimeOffset? NextAttemptAt { get; set; }
    public int? LastStatusCode { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? DeliveredAt { get; set; }
}

/// <summary>A delivery due now, with the message it carries.</summary>
public sealed class DueDelivery
{
    public long Id { get; set; }
    public string Subscription { get; set; } = "";
    public Guid MessageId { get; set; }
    public string Type { get; set; } = "";
    public int Attempts { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public string Payload { get; set; } = "";
    public DateTimeOffset WrittenAt { get; set; }
}

/// <summary>
/// The delivery log. It reads the outbox table only by id, after a cursor per subscription, and never changes it:
/// outbox rows stay after the relay publishes them (it only sets published_at), so a subscription's cursor can lag
/// behind the relay, or run without any bus at all.
/// </summary>
public sealed class WebhookStore(Database database)
{
    private bool SqlServer => database.Provider == DatabaseProvider.SqlServer;

    public async Task EnsureCursorsAsync(IEnumerable<string> subscriptions, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        foreach (var subscription in subscriptions)
        {
            try
            {
                await connection.ExecuteAsync(new CommandDefinition(WebhookSql.EnsureCursor, new { subscription }, cancellationToken: cancel));
            }
            catch (System.Data.Common.DbException e) when (SqlDialect.IsUniqueViolation(e))
            {
                // Another worker made it at the same moment.
            }
        }
    }

    /// <summary>
    /// Turns the outbox rows after the subscription's cursor into pending deliveries (those of the types it wants) and
    /// moves the cursor, in one transaction. Returns how many outbox rows it read.
    /// </summary>
    public async Task<int> EnqueueAsync(WebhookSubscription subscription, DateTimeOffset now, DateTimeOffset settled, int max, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        var after = await connection.ExecuteScalarAsync<long>(new CommandDefinition(WebhookSql.ReadCursor, new { subscription = subscription.Name }, transaction, cancellationToken: cancel));
        var rows = (await connection.QueryAsync<OutboxRow>(new CommandDefinition(SqlServer ? WebhookSqlServerSql.ReadOutboxAfter : WebhookLimitSql.ReadOutboxAfter,
            new { after, settled, max }, transaction, cancellationToken: cancel))).ToList();
        if (rows.Count == 0) return 0;
        foreach (var row in rows.Where(r => subscription.Events.Contains(r.Type)))
        {
            await connection.ExecuteAsync(new CommandDefinition(WebhookSql.InsertDelivery, new
            {
                Subscription = subscription.Name, OutboxId = row.Id, row.MessageId, row.Type, OrderKey = LeadIdOf(row.Payload), At = now,
            }, transaction, cancellationToken: cancel));
        }
        var moved = await connection.ExecuteAsync(new CommandDefinition(WebhookSql.MoveCursor, new { subscription = subscription.Name, from = after, to = rows[^1].Id }, transaction, cancellationToken: cancel));
        if (moved == 0) return 0; // another worker took these rows; disposing rolls back
        await transaction.CommitAsync(cancel);
        return rows.Count;
    }

    public async Task<IReadOnlyList<DueDelivery>> DueAsync(DateTimeOffset now, int max, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        return (await connection.QueryAsync<DueDelivery>(new CommandDefinition(SqlServer ? WebhookSqlServerSql.DueDeliveries : WebhookLimitSql.DueDeliveries,
            new { now, max }, cancellationToken: cancel))).ToList();
    }

    /// <summary>Takes a delivery for this worker until <paramref name="until"/>; false when another worker has it.</summary>
    public async Task<bool> ClaimAsync(long id, DateTimeOffset now, DateTimeOffset until, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        return await connection.ExecuteAsync(new CommandDefinition(WebhookSql.Claim, new { id, now, until }, cancellationToken: cancel)) == 1;
    }

    public async Task MarkDeliveredAsync(long id, int code, DateTimeOffset at, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        await connection.ExecuteAsync(new CommandDefinition(WebhookSql.MarkDelivered, new { id, code, at }, cancellationToken: cancel));
    }

    public async Task MarkFailedAsync(long id, bool givenUp, int? code, string? error, DateTimeOffset? next, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        await connection.ExecuteAsync(new CommandDefinition(WebhookSql.MarkFailed, new
        {
            id, status = givenUp ? "given_up" : "retrying", code, error = error is { Length: > 400 } ? error[..400] : error, next = givenUp ? null : next,
        }, cancellationToken: cancel));
    }

    public async Task<IReadOnlyDictionary<string, long>> CountByStatusAsync(CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<StatusCount>(new CommandDefinition(WebhookSql.CountByStatus, cancellationToken: cancel));
        return rows.ToDictionary(r => r.Status, r => r.Deliveries);
    }

    public async Task<IReadOnlyList<WebhookDeliveryRow>> ListAsync(string? status, int max, CancellationToken cancel)
    {
        await using var connection = await database.OpenAsync(cancel);
        return (await connection.QueryAsync<WebhookDeliveryRow>(new CommandDefinition(SqlServer ? WebhookSqlServerSql.ListDeliveries : WebhookLimitSql.ListDeliveries,
            new { status = status ?? "", max }, cancellationToken: cancel))).ToList();
    }

    /// <summary>The message's lead id (its deliveries keep their order), or empty for a message about no one lead.</summary>
    private static string LeadIdOf(string payload)
    {
        using var json = JsonDocument.Parse(payload);
        foreach (var property in json.RootElement.EnumerateObject())
        {
            if (string.Equals(property.Name, "leadId", StringComparison.OrdinalIgnoreCase) && property.Value.ValueKind == JsonValueKind.String) return property.Value.GetString()!;
        }
        return "";
    }

    private sealed class StatusCount
    {
        public string Status { get; set; } = "";
        public long Deliveries { get; set; }
    }

    private sealed class OutboxRow
    {
        public long Id { get; set; }
        public Guid MessageId { get; set; }
        public string Type { get; set; } = "";
        public string Payload { get; set; } = "";
        public DateTimeOffset CreatedAt { get; set; }
    }
}
