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

    /// <summary>
    /// Parameters in one statement. SQL Server takes at most 2,100. SQLite finds each parameter by name with a search
    /// through the statement's names, so binding costs the square of their number: its statements stay small (it runs
    /// in the process, so more statements cost no round trips).
    /// </summary>
    public int ParametersPerStatement => Provider == DatabaseProvider.Sqlite ? 200 : 2000;

    /// <summary>An id list as @ids, as the provider takes it: an array for PostgreSQL (= ANY), a list Dapper expands (IN) elsewhere; ids are text on SQLite.</summary>
    public Dapper.DynamicParameters Ids<T>(IEnumerable<T> ids)
    {
        var parameters = new Dapper.DynamicParameters();
        parameters.Add("ids", IdList(ids));
        return parameters;
    }

    /// <summary>The value of an @ids parameter (see <see cref="Ids{T}"/>).</summary>
    public object IdList<T>(IEnumerable<T> ids) =>
        Provider == DatabaseProvider.Sqlite && typeof(T) == typeof(Guid) ? ids.Select(i => ((Guid)(object)i!).ToString("D")).ToArray() : ids.ToArray();

    private string In(string column) => Provider == DatabaseProvider.PostgreSql ? $"{column} = ANY(@ids)" : $"{column} IN @ids";

    /// <summary>The inbox: which of a batch's event ids are stored already.</summary>
    public string KnownEvents => $"SELECT event_id FROM lead_events WHERE {In("event_id")}";

    /// <summary>
    /// Locks a batch's leads, stored or not yet, in id order until the batch commits, so two workers whose batches share
    /// a lead take turns instead of failing each other's version check or creating the lead twice. PostgreSQL takes
    /// transaction advisory locks on the ids; SQL Server key-range locks (see <see cref="SelectLeads"/>); SQLite
    /// has one writer at a time anyway.
    /// </summary>
    public string? LockLeads => Provider == DatabaseProvider.PostgreSql
        ? "SELECT pg_advisory_xact_lock(hashtextextended(id, 0)) FROM unnest(@ids) AS id ORDER BY id"
        : null;

    /// <summary>
    /// A batch's reads are planned for the table as it is now. Npgsql prepares what runs often, and PostgreSQL then keeps
    /// one plan for any list of ids: made while a new database was small, it scanned the whole table for every batch until
    /// the next ANALYZE (16 ms a batch for the enrolments after 10,000 events). A SELECT (SET LOCAL's twin), so that it has a
    /// result like the reads it goes with. PostgreSQL only.
    /// </summary>
    public string? PlanForTheTableAsItIs => Provider == DatabaseProvider.PostgreSql ? PlanEachTime : null;

    /// <summary>SET LOCAL plan_cache_mode = force_custom_plan, as a statement with a result.</summary>
    private const string PlanEachTime = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)";

    /// <summary>A batch's stored leads; on SQL Server locked by key range until the batch commits.</summary>
    public string SelectLeads => Provider == DatabaseProvider.SqlServer
        ? $"SELECT lead_id, state, version FROM leads WITH (UPDLOCK, HOLDLOCK, ROWLOCK) WHERE {In("lead_id")} ORDER BY lead_id"
        : $"SELECT lead_id, state, version FROM leads WHERE {In("lead_id")}";

    /// <summary>The last nurture enrolment of each of a batch's leads.</summary>
    public string SelectEnrolments => $"SELECT lead_id, MAX(enrolment) AS enrolment FROM nurture_steps WHERE {In("lead_id")} GROUP BY lead_id";

    public string DeleteTransitions => $"DELETE FROM stage_transitions WHERE {In("lead_id")}";

    /// <summary>Every pending or claimed step of these leads cancelled with the reason (a claimed one is kept by its claimer for the record).</summary>
    public string CancelStepsOf => $"UPDATE nurture_steps SET status = 'cancelled', last_error = @reason, claim_until = NULL WHERE {In("lead_id")} AND status IN ('pending', 'claimed')";

    /// <summary>
    /// One INSERT of many rows (<paramref name="tuples"/> are "(@p0, @p1, …)"). With <paramref name="key"/>, rows whose key
    /// is stored already are skipped: ON CONFLICT on PostgreSQL, OR IGNORE on SQLite, NOT EXISTS under a key lock on SQL Server.
    /// </summary>
    public string InsertRows(string table, IReadOnlyList<string> columns, IReadOnlyList<string> tuples, IReadOnlyList<string>? key = null) =>
        InsertRows(table, columns, "VALUES\n" + string.Join(",\n", tuples), key);

    /// <summary>INSERT of the rows <paramref name="rows"/> gives (a VALUES list or a SELECT); with <paramref name="key"/>, a row whose key is stored already is left out.</summary>
    public string InsertRows(string table, IReadOnlyList<string> columns, string rows, IReadOnlyList<string>? key = null)
    {
        var list = string.Join(", ", columns);
        if (key is null) return $"INSERT INTO {table} ({list})\n{rows}";
        return Provider switch
        {
            DatabaseProvider.PostgreSql => $"INSERT INTO {table} ({list})\n{rows}\nON CONFLICT ({string.Join(", ", key)}) DO NOTHING",
            DatabaseProvider.SqlServer => $"""
                INSERT INTO {table} ({list})
                SELECT {string.Join(", ", columns.Select(c => "v." + c))} FROM (
                {rows}) AS v ({list})
                WHERE NOT EXISTS (SELECT 1 FROM {table} t WITH (UPDLOCK, HOLDLOCK) WHERE {string.Join(" AND ", key.Select(k => $"t.{k} = v.{k}"))})
                """,
            _ => $"INSERT OR IGNORE INTO {table} ({list})\n{rows}",
        };
    }

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
    /// sends since @since, one row per send (or one row with no send). Each lead's sends are looked up by the lead
    /// (ix_nurture_steps_sent); a join of all recent sends filtered afterwards read every one of them for each step.
    /// On PostgreSQL, OFFSET 0 keeps the lateral read a per-lead lookup: pulled up into a join, a generic plan made while
    /// few steps had been sent materialised every recent send of every lead and filtered them for each step (11 ms a
    /// batch of 50 after 3,000 sends, growing with them). The claim indexes hold only claimable steps (script 0013) so
    /// that such a plan cannot read the sent steps through them either.
    /// </summary>
    public string DueStepContext => $"""
        SELECT s.id AS step_id, l.state, r.sent_at
        FROM nurture_steps s
        LEFT JOIN leads l ON l.lead_id = s.lead_id
        {Provider switch
        {
            DatabaseProvider.PostgreSql => "LEFT JOIN LATERAL (SELECT sent_at FROM nurture_steps WHERE lead_id = s.lead_id AND status = 'sent' AND sent_at > @since OFFSET 0) AS r ON TRUE",
            DatabaseProvider.SqlServer => "OUTER APPLY (SELECT sent_at FROM nurture_steps WHERE lead_id = s.lead_id AND status = 'sent' AND sent_at > @since) AS r",
            _ => "LEFT JOIN nurture_steps r ON r.lead_id = s.lead_id AND r.status = 'sent' AND r.sent_at > @since",
        }}
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
        // One statement, run as one implicit transaction; its parts all see the step as it was before it. The step is read
        // by its id alone, so the primary key finds it: a plan that looked for it among the sent steps (the status index)
        // read every sent step for each email.
        DatabaseProvider.PostgreSql => """
            WITH current AS (
                SELECT id, status, claimed_by, message_id FROM nurture_steps WHERE id = @Id FOR UPDATE),
            step AS (
                SELECT id, status FROM current WHERE claimed_by = @Claimer AND status IN ('claimed', 'cancelled')),
            marked AS (
                UPDATE nurture_steps SET status = 'sent', message_id = @MessageId, sent_at = @At, claim_until = NULL
                WHERE id = @Id AND EXISTS (SELECT 1 FROM step)),
            next_step AS (
                INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
                SELECT @LeadId, @NextTrack, @Enrolment, @NextStep, @NextTemplate, @NextDueAt, 'pending', 0 FROM step
                WHERE @HasNext = 1 AND step.status = 'claimed'
                ON CONFLICT (lead_id, track, enrolment, step) DO NOTHING),
            scheduled AS (
                INSERT INTO outbox (message_id, type, payload, created_at)
                SELECT @NextEventId, 'NurtureEmailScheduled', @NextPayload, @At FROM step
                WHERE @HasNext = 1 AND step.status = 'claimed'
                ON CONFLICT (message_id) DO NOTHING),
            sent AS (
                INSERT INTO outbox (message_id, type, payload, created_at)
                SELECT @SentEventId, 'NurtureEmailSent', @SentPayload, @At FROM step
                ON CONFLICT (message_id) DO NOTHING)
            SELECT COUNT(*) FROM current
            WHERE claimed_by = @Claimer AND (status IN ('claimed', 'cancelled') OR status = 'sent' AND message_id = @MessageId)
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

    /// <summary>
    /// Claims up to @Max unpublished outbox rows above id @After for @Claimer until @Until (rows whose lease ran out come
    /// back), so the relay can commit before it talks to the broker. PostgreSQL and SQL Server skip rows another relay is
    /// claiming.
    /// </summary>
    public string ClaimOutbox => Provider switch
    {
        DatabaseProvider.PostgreSql => """
            UPDATE outbox SET claimed_by = @Claimer, claim_until = @Until
            WHERE id IN (
                SELECT id FROM outbox
                WHERE published_at IS NULL AND id > @After AND (claim_until IS NULL OR claim_until < @Now)
                ORDER BY id
                LIMIT @Max
                FOR UPDATE SKIP LOCKED)
            RETURNING id, message_id, type, payload
            """,
        DatabaseProvider.SqlServer => """
            WITH due AS (
                SELECT TOP (@Max) *
                FROM outbox WITH (UPDLOCK, READPAST, ROWLOCK)
                WHERE published_at IS NULL AND id > @After AND (claim_until IS NULL OR claim_until < @Now)
                ORDER BY id)
            UPDATE due SET claimed_by = @Claimer, claim_until = @Until
            OUTPUT inserted.id, inserted.message_id, inserted.type, inserted.payload
            """,
        _ => """
            UPDATE outbox SET claimed_by = @Claimer, claim_until = @Until
            WHERE id IN (
                SELECT id FROM outbox
                WHERE published_at IS NULL AND id > @After AND (claim_until IS NULL OR claim_until < @Now)
                ORDER BY id
                LIMIT @Max)
            RETURNING id, message_id, type, payload
            """,
    };

    /// <summary>
    /// For the relay's own bookkeeping (claims and marks): a commit that does not wait for the disk, and plans for the
    /// outbox as it is now. Losing a commit in a crash only publishes a message again under its same id, which
    /// at-least-once delivery allows; the events' own commits still wait. A plan kept from when the outbox was small
    /// scanned all of it for every mark. PostgreSQL only.
    /// </summary>
    public string? RelayBookkeeping => Provider == DatabaseProvider.PostgreSql
        ? "SET LOCAL synchronous_commit = off; " + PlanEachTime
        : null;

    /// <summary>
    /// Marks claimed outbox rows published, by message id (what the relay knows of a message handed to it), only while the
    /// claim is still this relay's; returns their ids (the relay's floor).
    /// </summary>
    public string MarkPublished => Provider == DatabaseProvider.SqlServer
        ? $"UPDATE outbox SET published_at = @at, claim_until = NULL OUTPUT inserted.id WHERE {In("message_id")} AND claimed_by = @claimer"
        : $"UPDATE outbox SET published_at = @at, claim_until = NULL WHERE {In("message_id")} AND claimed_by = @claimer RETURNING id";

    /// <summary>Gives claimed rows back at once when publishing them failed, instead of waiting for the lease to run out.</summary>
    public string ReleaseOutbox => $"UPDATE outbox SET claim_until = NULL WHERE {In("message_id")} AND claimed_by = @claimer AND published_at IS NULL";

    /// <summary>Another writer inserted the same key first: for a lead row that is a version conflict.</summary>
    public static bool IsUniqueViolation(DbException e) => e switch
    {
        SqliteException s => s.SqliteErrorCode == 19,
        PostgresException p => p.SqlState == PostgresErrorCodes.UniqueViolation,
        SqlException s => s.Number is 2627 or 2601,
        _ => false,
    };

    /// <summary>
    /// When the database refuses a value for good (too long, out of range, a character it cannot store), what it
    /// refused, in words of our own: the provider's text may quote the value. Null for errors that may pass.
    /// </summary>
    public static string? Refusal(DbException e) => e switch
    {
        PostgresException p => p.SqlState switch
        {
            "22001" => "a text is longer than the database keeps (22001)",
            "22003" => "a number is out of the range the database keeps (22003)",
            "22021" or "22P05" => "a text holds a character the database cannot store, such as NUL (" + p.SqlState + ")",
            "22007" or "22008" => "a time is out of the range the database keeps (" + p.SqlState + ")",
            "23502" => "a required value is missing (23502)",
            "23514" => "a value breaks a rule of the database (23514)",
            var state when state.StartsWith("22", StringComparison.Ordinal) => $"a value the database cannot store ({state})",
            _ => null,
        },
        SqliteException s => s.SqliteErrorCode switch
        {
            18 => "a value is larger than the database keeps (SQLite 18)",
            20 => "a value has a type the database does not take (SQLite 20)",
            19 when !IsUniqueViolation(e) => "a value breaks a rule of the database (SQLite 19)",
            _ => null,
        },
        SqlException s => s.Number switch
        {
            8115 or 220 or 232 => $"a number is out of the range the database keeps (SQL Server {s.Number})",
            8152 or 2628 => $"a text is longer than the database keeps (SQL Server {s.Number})",
            242 or 517 => $"a time is out of the range the database keeps (SQL Server {s.Number})",
            515 => "a required value is missing (SQL Server 515)",
            547 => "a value breaks a rule of the database (SQL Server 547)",
            _ => null,
        },
        _ => null,
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
