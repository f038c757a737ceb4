using System.Data.Common;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Nurture.Worker.Storage;

/// <summary>
/// The few statements that differ between providers, in one place. Everything else in <see cref="LeadStore"/> is
/// plain SQL that all three accept.
/// </summary>
public sealed class SqlDialect
{
    private SqlDialect(DatabaseProvider provider) => Provider = provider;

    public DatabaseProvider Provider { get; }

    public static SqlDialect For(DatabaseProvider provider) => new(provider);

    /// <summary>The inbox: records an event unless its id is there already. One row affected means "new".</summary>
    public string InsertEventIfNew => Provider switch
    {
        DatabaseProvider.PostgreSql => """
            INSERT INTO lead_events (event_id, lead_id, type, occurred_at, received_at, payload)
            VALUES (@EventId, @LeadId, @Type, @OccurredAt, @ReceivedAt, @Payload)
            ON CONFLICT (event_id) DO NOTHING
            """,
        DatabaseProvider.SqlServer => """
            INSERT INTO lead_events (event_id, lead_id, type, occurred_at, received_at, payload)
            SELECT @EventId, @LeadId, @Type, @OccurredAt, @ReceivedAt, @Payload
            WHERE NOT EXISTS (SELECT 1 FROM lead_events WITH (UPDLOCK, HOLDLOCK) WHERE event_id = @EventId)
            """,
        _ => """
            INSERT OR IGNORE INTO lead_events (event_id, lead_id, type, occurred_at, received_at, payload)
            VALUES (@EventId, @LeadId, @Type, @OccurredAt, @ReceivedAt, @Payload)
            """,
    };

    public string InsertStepIfNew => Provider switch
    {
        DatabaseProvider.PostgreSql => """
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            VALUES (@LeadId, @Track, @Enrolment, @Step, @Template, @DueAt, 'pending', 0)
            ON CONFLICT (lead_id, track, enrolment, step) DO NOTHING
            """,
        DatabaseProvider.SqlServer => """
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT @LeadId, @Track, @Enrolment, @Step, @Template, @DueAt, 'pending', 0
            WHERE NOT EXISTS (SELECT 1 FROM nurture_steps WITH (UPDLOCK, HOLDLOCK)
                              WHERE lead_id = @LeadId AND track = @Track AND enrolment = @Enrolment AND step = @Step)
            """,
        _ => """
            INSERT OR IGNORE INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            VALUES (@LeadId, @Track, @Enrolment, @Step, @Template, @DueAt, 'pending', 0)
            """,
    };

    public string InsertSuppressionIfNew => Provider switch
    {
        DatabaseProvider.PostgreSql => "INSERT INTO suppressions (email_hash, reason, at) VALUES (@EmailHash, @Reason, @At) ON CONFLICT (email_hash) DO NOTHING",
        DatabaseProvider.SqlServer => """
            INSERT INTO suppressions (email_hash, reason, at)
            SELECT @EmailHash, @Reason, @At
            WHERE NOT EXISTS (SELECT 1 FROM suppressions WITH (UPDLOCK, HOLDLOCK) WHERE email_hash = @EmailHash)
            """,
        _ => "INSERT OR IGNORE INTO suppressions (email_hash, reason, at) VALUES (@EmailHash, @Reason, @At)",
    };

    /// <summary>Per UTC day since @since: emails sent, new MQLs and hand-off SLA breaches.</summary>
    public string Timeline => $"""
        SELECT {DayOf("sent_at")} AS day, 'emailsSent' AS series, COUNT(*) AS count FROM nurture_steps WHERE status = 'sent' AND sent_at >= @since GROUP BY {DayOf("sent_at")}
        UNION ALL
        SELECT {DayOf("at")}, 'mqls', COUNT(*) FROM stage_transitions WHERE to_stage = 'Mql' AND at >= @since GROUP BY {DayOf("at")}
        UNION ALL
        SELECT {DayOf("created_at")}, 'handOffBreaches', COUNT(*) FROM outbox WHERE type = 'HandOffSlaBreached' AND created_at >= @since GROUP BY {DayOf("created_at")}
        """;

    /// <summary>The UTC calendar day of a time column as yyyy-MM-dd text, for per-day counts.</summary>
    public string DayOf(string column) => Provider switch
    {
        DatabaseProvider.PostgreSql => $"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        DatabaseProvider.SqlServer => $"CONVERT(char(10), SWITCHOFFSET({column}, '+00:00'), 23)",
        _ => $"substr({column}, 1, 10)",
    };

    /// <summary>A message a re-decided history may have queued before (same derived id) is queued once.</summary>
    public string InsertOutboxIfNew => Provider switch
    {
        DatabaseProvider.PostgreSql => "INSERT INTO outbox (message_id, type, payload, created_at) VALUES (@EventId, @Type, @Payload, @CreatedAt) ON CONFLICT (message_id) DO NOTHING",
        DatabaseProvider.SqlServer => """
            INSERT INTO outbox (message_id, type, payload, created_at)
            SELECT @EventId, @Type, @Payload, @CreatedAt
            WHERE NOT EXISTS (SELECT 1 FROM outbox WITH (UPDLOCK, HOLDLOCK) WHERE message_id = @EventId)
            """,
        _ => "INSERT OR IGNORE INTO outbox (message_id, type, payload, created_at) VALUES (@EventId, @Type, @Payload, @CreatedAt)",
    };

    /// <summary>
    /// Claims up to @Max due steps (pending and due, or claimed by someone whose lease ran out) for @Claimer until @Until.
    /// Each of the two kinds is read as one range of its own index, (status, due_at) and (status, claim_until), in order
    /// and stopping at @Max, so a claim costs the same with ten thousand or a million steps pending (an OR of the two
    /// would scan and sort the table). PostgreSQL skips rows another claimer holds (FOR UPDATE SKIP LOCKED); SQL Server
    /// reads past them (UPDLOCK, READPAST, ROWLOCK); SQLite runs it inside an immediate transaction, which admits one writer.
    /// </summary>
    public string ClaimDueSteps => Provider switch
    {
        DatabaseProvider.PostgreSql => """
            WITH lapsed AS (
                SELECT id FROM nurture_steps WHERE status = 'claimed' AND claim_until < @Now
                ORDER BY claim_until LIMIT @Max FOR UPDATE SKIP LOCKED),
            due AS (
                SELECT id FROM nurture_steps WHERE status = 'pending' AND due_at <= @Now
                ORDER BY due_at LIMIT @Max FOR UPDATE SKIP LOCKED)
            UPDATE nurture_steps SET status = 'claimed', claimed_by = @Claimer, claim_until = @Until, attempts = attempts + 1
            WHERE id IN (SELECT id FROM (SELECT id FROM lapsed UNION ALL SELECT id FROM due) AS both_kinds LIMIT @Max)
            RETURNING id, lead_id, track, enrolment, step, template, due_at, attempts
            """,
        DatabaseProvider.SqlServer => """
            UPDATE nurture_steps SET status = 'claimed', claimed_by = @Claimer, claim_until = @Until, attempts = attempts + 1
            OUTPUT inserted.id, inserted.lead_id, inserted.track, inserted.enrolment, inserted.step, inserted.template, inserted.due_at, inserted.attempts
            WHERE id IN (
                SELECT TOP (@Max) id FROM (
                    SELECT id FROM (
                        SELECT TOP (@Max) id FROM nurture_steps WITH (UPDLOCK, READPAST, ROWLOCK)
                        WHERE status = 'claimed' AND claim_until < @Now ORDER BY claim_until) AS lapsed
                    UNION ALL
                    SELECT id FROM (
                        SELECT TOP (@Max) id FROM nurture_steps WITH (UPDLOCK, READPAST, ROWLOCK)
                        WHERE status = 'pending' AND due_at <= @Now ORDER BY due_at) AS due) AS both_kinds)
            """,
        _ => """
            UPDATE nurture_steps SET status = 'claimed', claimed_by = @Claimer, claim_until = @Until, attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM (SELECT id FROM nurture_steps WHERE status = 'claimed' AND claim_until < @Now ORDER BY claim_until LIMIT @Max)
                UNION ALL
                SELECT id FROM (SELECT id FROM nurture_steps WHERE status = 'pending' AND due_at <= @Now ORDER BY due_at LIMIT @Max)
                LIMIT @Max)
            RETURNING id, lead_id, track, enrolment, step, template, due_at, attempts
            """,
    };

    /// <summary>
    /// What the send rules need for the claimed steps @ids, in one read: each step's lead (its state) and that lead's
    /// sends since @since, one row per send (or one row with no send).
    /// </summary>
    public string DueStepContext => $"""
        SELECT s.id AS step_id, l.state, r.sent_at
        FROM nurture_steps s
        LEFT JOIN leads l ON l.lead_id = s.lead_id
        LEFT JOIN nurture_steps r ON r.lead_id = s.lead_id AND r.status = 'sent' AND r.sent_at > @since
        WHERE s.id {InList("ids")}
        """;

    /// <summary>Which of the address hashes @hashes are suppressed.</summary>
    public string SuppressedAmong => $"SELECT email_hash FROM suppressions WHERE email_hash {InList("hashes")}";

    /// <summary>
    /// A sent step, in one round trip: the next step of the track and NurtureEmailScheduled (only while the step is still
    /// claimed: a step cancelled meanwhile, by a goal or an unsubscribe, is recorded as sent with nothing after it),
    /// NurtureEmailSent, and the mark itself; all only while the claim is @Claimer's. Returns 1 when marked.
    /// </summary>
    public string RecordStepSent => Provider switch
    {
        DatabaseProvider.PostgreSql => """
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT @LeadId, @NextTrack, @Enrolment, @NextStep, @NextTemplate, @NextDueAt, 'pending', 0
            WHERE @HasNext = 1 AND EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'claimed')
            ON CONFLICT (lead_id, track, enrolment, step) DO NOTHING;
            INSERT INTO outbox (message_id, type, payload, created_at)
            SELECT @NextEventId, 'NurtureEmailScheduled', @NextPayload, @At
            WHERE @HasNext = 1 AND EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'claimed')
            ON CONFLICT (message_id) DO NOTHING;
            INSERT INTO outbox (message_id, type, payload, created_at)
            SELECT @SentEventId, 'NurtureEmailSent', @SentPayload, @At
            WHERE EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status IN ('claimed', 'cancelled'))
            ON CONFLICT (message_id) DO NOTHING;
            UPDATE nurture_steps SET status = 'sent', message_id = @MessageId, sent_at = @At, claim_until = NULL
            WHERE id = @Id AND claimed_by = @Claimer AND status IN ('claimed', 'cancelled');
            SELECT COUNT(*) FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'sent' AND message_id = @MessageId;
            """,
        DatabaseProvider.SqlServer => """
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT @LeadId, @NextTrack, @Enrolment, @NextStep, @NextTemplate, @NextDueAt, 'pending', 0
            WHERE @HasNext = 1 AND EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'claimed')
              AND NOT EXISTS (SELECT 1 FROM nurture_steps WITH (UPDLOCK, HOLDLOCK)
                              WHERE lead_id = @LeadId AND track = @NextTrack AND enrolment = @Enrolment AND step = @NextStep);
            INSERT INTO outbox (message_id, type, payload, created_at)
            SELECT @NextEventId, 'NurtureEmailScheduled', @NextPayload, @At
            WHERE @HasNext = 1 AND EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'claimed')
              AND NOT EXISTS (SELECT 1 FROM outbox WITH (UPDLOCK, HOLDLOCK) WHERE message_id = @NextEventId);
            INSERT INTO outbox (message_id, type, payload, created_at)
            SELECT @SentEventId, 'NurtureEmailSent', @SentPayload, @At
            WHERE EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status IN ('claimed', 'cancelled'))
              AND NOT EXISTS (SELECT 1 FROM outbox WITH (UPDLOCK, HOLDLOCK) WHERE message_id = @SentEventId);
            UPDATE nurture_steps SET status = 'sent', message_id = @MessageId, sent_at = @At, claim_until = NULL
            WHERE id = @Id AND claimed_by = @Claimer AND status IN ('claimed', 'cancelled');
            SELECT COUNT(*) FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'sent' AND message_id = @MessageId;
            """,
        _ => """
            INSERT OR IGNORE INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT @LeadId, @NextTrack, @Enrolment, @NextStep, @NextTemplate, @NextDueAt, 'pending', 0
            WHERE @HasNext = 1 AND EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'claimed');
            INSERT OR IGNORE INTO outbox (message_id, type, payload, created_at)
            SELECT @NextEventId, 'NurtureEmailScheduled', @NextPayload, @At
            WHERE @HasNext = 1 AND EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'claimed');
            INSERT OR IGNORE INTO outbox (message_id, type, payload, created_at)
            SELECT @SentEventId, 'NurtureEmailSent', @SentPayload, @At
            WHERE EXISTS (SELECT 1 FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status IN ('claimed', 'cancelled'));
            UPDATE nurture_steps SET status = 'sent', message_id = @MessageId, sent_at = @At, claim_until = NULL
            WHERE id = @Id AND claimed_by = @Claimer AND status IN ('claimed', 'cancelled');
            SELECT COUNT(*) FROM nurture_steps WHERE id = @Id AND claimed_by = @Claimer AND status = 'sent' AND message_id = @MessageId;
            """,
    };

    /// <summary>A list parameter: an array for Npgsql, Dapper's expanded list for the others.</summary>
    private string InList(string parameter) => Provider == DatabaseProvider.PostgreSql ? $"= ANY(@{parameter})" : $"IN @{parameter}";

    /// <summary>The oldest unpublished outbox rows.</summary>
    public string ReadOutbox => Provider switch
    {
        DatabaseProvider.SqlServer => "SELECT TOP (@Max) id, message_id, type, payload FROM outbox WHERE published_at IS NULL ORDER BY id",
        _ => "SELECT id, message_id, type, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT @Max",
    };

    /// <summary>The oldest unpublished outbox rows, locked for this transaction so another worker's relay skips them.</summary>
    public string ClaimOutbox => Provider switch
    {
        DatabaseProvider.PostgreSql => "SELECT id, message_id, type, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT @Max FOR UPDATE SKIP LOCKED",
        DatabaseProvider.SqlServer => "SELECT TOP (@Max) id, message_id, type, payload FROM outbox WITH (UPDLOCK, READPAST, ROWLOCK) WHERE published_at IS NULL ORDER BY id",
        // SQLite: the transaction is immediate, so it holds the one write lock.
        _ => "SELECT id, message_id, type, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT @Max",
    };

    /// <summary>Marks outbox rows published; Npgsql takes the id list as an array, the others as Dapper's expanded list.</summary>
    public string MarkPublished => Provider == DatabaseProvider.PostgreSql
        ? "UPDATE outbox SET published_at = @at WHERE id = ANY(@ids)"
        : "UPDATE outbox SET published_at = @at WHERE id IN @ids";

    /// <summary>Another writer inserted the same key first: for a lead row that is a version conflict.</summary>
    public static bool IsUniqueViolation(DbException e) => e switch
    {
        SqliteException s => s.SqliteErrorCode == 19,
        PostgresException p => p.SqlState == PostgresErrorCodes.UniqueViolation,
        SqlException s => s.Number is 2627 or 2601,
        _ => false,
    };

    /// <summary>Errors worth retrying the whole transaction for: deadlocks, serialization failures, a busy SQLite file.</summary>
    public static bool IsTransient(DbException e) => e switch
    {
        SqliteException s => s.SqliteErrorCode is 5 or 6,
        // Npgsql knows the passing ones: serialization failures, deadlocks, too many connections, a server restarting.
        PostgresException p => p.IsTransient || p.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected,
        NpgsqlException n => n.IsTransient,
        // Deadlock, timeout, lost or refused connections, Azure SQL throttling and failover.
        SqlException s => s.IsTransient || s.Number is 1205 or -2 or 2 or 53 or 233 or 4060 or 10053 or 10054 or 10060 or 40197 or 40501 or 40613 or 49918 or 49919 or 49920,
        _ => e.IsTransient,
    };
}
