namespace Nurture.Worker.Webhooks;

/// <summary>The webhook SQL all three providers accept (parsed as T-SQL by the SQL Server syntax test).</summary>
internal static class WebhookSql
{
    /// <summary>A new subscription starts at the end of the outbox: it gets what happens from now on.</summary>
    public const string EnsureCursor = """
        INSERT INTO webhook_cursors (subscription, last_outbox_id)
        SELECT @subscription, COALESCE(MAX(id), 0) FROM outbox
        WHERE NOT EXISTS (SELECT 1 FROM webhook_cursors WHERE subscription = @subscription)
        """;

    public const string ReadCursor = "SELECT last_outbox_id FROM webhook_cursors WHERE subscription = @subscription";

    /// <summary>Moves the cursor only from where this worker read it: another worker that got there first wins.</summary>
    public const string MoveCursor = "UPDATE webhook_cursors SET last_outbox_id = @to WHERE subscription = @subscription AND last_outbox_id = @from";

    public const string InsertDelivery = """
        INSERT INTO webhook_deliveries (subscription, outbox_id, message_id, type, order_key, status, attempts, next_attempt_at, created_at)
        VALUES (@Subscription, @OutboxId, @MessageId, @Type, @OrderKey, 'pending', 0, @At, @At)
        """;

    public const string Claim = """
        UPDATE webhook_deliveries SET claim_until = @until
        WHERE id = @id AND status IN ('pending', 'retrying') AND (claim_until IS NULL OR claim_until < @now)
        """;

    public const string MarkDelivered = """
        UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_status_code = @code, last_error = NULL,
            delivered_at = @at, next_attempt_at = NULL, claim_until = NULL
        WHERE id = @id
        """;

    public const string MarkFailed = """
        UPDATE webhook_deliveries SET status = @status, attempts = attempts + 1, last_status_code = @code, last_error = @error,
            next_attempt_at = @next, claim_until = NULL
        WHERE id = @id
        """;

    public const string CountByStatus = "SELECT status, COUNT(*) AS deliveries FROM webhook_deliveries GROUP BY status";
}

/// <summary>The statements that limit rows, in SQL Server's words (TOP).</summary>
internal static class WebhookSqlServerSql
{
    public const string ReadOutboxAfter = """
        SELECT TOP (@max) id, message_id, type, payload, created_at FROM outbox
        WHERE id > @after AND created_at <= @settled ORDER BY id
        """;

    public const string DueDeliveries = """
        SELECT TOP (@max) d.id, d.subscription, d.message_id, d.type, d.attempts, d.created_at, o.payload, o.created_at AS written_at
        FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id
        WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= @now AND (d.claim_until IS NULL OR d.claim_until < @now)
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription = d.subscription AND e.order_key = d.order_key
                          AND e.outbox_id < d.outbox_id AND e.status IN ('pending', 'retrying'))
        ORDER BY d.outbox_id
        """;

    public const string ListDeliveries = """
        SELECT TOP (@max) id, subscription, outbox_id, message_id, type, order_key, status, attempts, next_attempt_at, last_status_code, last_error, created_at, delivered_at
        FROM webhook_deliveries WHERE status = @status OR @status = '' ORDER BY id DESC
        """;
}

/// <summary>The same statements with LIMIT (SQLite and PostgreSQL).</summary>
internal static class WebhookLimitSql
{
    public const string ReadOutboxAfter = """
        SELECT id, message_id, type, payload, created_at FROM outbox
        WHERE id > @after AND created_at <= @settled ORDER BY id LIMIT @max
        """;

    public const string DueDeliveries = """
        SELECT d.id, d.subscription, d.message_id, d.type, d.attempts, d.created_at, o.payload, o.created_at AS written_at
        FROM webhook_deliveries d JOIN outbox o ON o.id = d.outbox_id
        WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= @now AND (d.claim_until IS NULL OR d.claim_until < @now)
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription = d.subscription AND e.order_key = d.order_key
                          AND e.outbox_id < d.outbox_id AND e.status IN ('pending', 'retrying'))
        ORDER BY d.outbox_id LIMIT @max
        """;

    public const string ListDeliveries = """
        SELECT id, subscription, outbox_id, message_id, type, order_key, status, attempts, next_attempt_at, last_status_code, last_error, created_at, delivered_at
        FROM webhook_deliveries WHERE status = @status OR @status = '' ORDER BY id DESC LIMIT @max
        """;
}
