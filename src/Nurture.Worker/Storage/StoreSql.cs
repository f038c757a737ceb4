namespace Nurture.Worker.Storage;

/// <summary>
/// The SQL that all three providers accept, as constants so one test can parse every SQL Server statement
/// (with ScriptDom) even where no SQL Server runs. What differs per provider is in <see cref="SqlDialect"/>.
/// </summary>
internal static class StoreSql
{
    // A step cancelled (goal, unsubscribe) while its email was on its way is recorded as sent, because it was;
    // cancelling keeps claimed_by for that reason.
    public const string MarkStepSent = """
        UPDATE nurture_steps SET status = 'sent', message_id = @messageId, sent_at = @at, claim_until = NULL
        WHERE id = @id AND claimed_by = @claimer AND status IN ('claimed', 'cancelled')
        """;

    public const string MarkStepFailed = """
        UPDATE nurture_steps SET status = 'failed', last_error = @error, claimed_by = NULL, claim_until = NULL
        WHERE id = @id AND claimed_by = @claimer AND status = 'claimed'
        """;

    public const string MarkStepRetry = """
        UPDATE nurture_steps SET status = 'pending', due_at = @retryAt, last_error = @error, claimed_by = NULL, claim_until = NULL
        WHERE id = @id AND claimed_by = @claimer AND status = 'claimed'
        """;

    public const string MqlStates = "SELECT state, version FROM leads WHERE stage = 'Mql'";

    public const string SelectLeadState = "SELECT state, version FROM leads WHERE lead_id = @leadId";

    public const string SelectHistory = "SELECT payload FROM lead_events WHERE lead_id = @leadId ORDER BY occurred_at, event_id";

    public const string SelectActivitiesSince = """
        SELECT payload FROM lead_events
        WHERE lead_id = @leadId AND occurred_at >= @since AND type = 'LeadActivityRecorded'
        ORDER BY occurred_at, event_id
        """;

    public const string DeleteTransitions = "DELETE FROM stage_transitions WHERE lead_id = @leadId";

    public const string InsertRejected = """
        INSERT INTO rejected_events (received_at, origin, reason, payload, lead_id, payload_sha256, payload_length)
        VALUES (@at, @origin, @reason, @payload, @leadId, @sha256, @length)
        """;

    public const string CountSuppressions = "SELECT COUNT(*) FROM suppressions WHERE email_hash = @hash";

    public const string CountByStage = "SELECT stage, COUNT(*) AS leads FROM leads GROUP BY stage";

    public const string SpendByChannel = "SELECT channel, SUM(amount) AS amount FROM spend GROUP BY channel";

    public const string NextEnrolment = "SELECT COALESCE(MAX(enrolment), 0) + 1 FROM nurture_steps WHERE lead_id = @LeadId";

    public const string CancelSteps = "UPDATE nurture_steps SET status = 'cancelled', last_error = @reason, claim_until = NULL WHERE lead_id = @leadId AND status IN ('pending', 'claimed')";

    public const string UpdateEventPayload = "UPDATE lead_events SET payload = @payload WHERE event_id = @eventId";
}
