using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

/// <summary>What the nurture jobs store: sends and their next steps, deferrals, skips, hand-off SLA breaches, re-scores.</summary>
public sealed partial class LeadStore
{
    /// <summary>When the lead's emails went out since <paramref name="since"/> (any track), for the frequency cap.</summary>
    public async Task<IReadOnlyList<DateTimeOffset>> RecentSendsAsync(string leadId, DateTimeOffset since, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return (await connection.QueryAsync<DateTimeOffset>(new CommandDefinition(
            NurtureSql.RecentSends, new { leadId, since }, cancellationToken: cancel))).ToList();
    }

    /// <summary>The ids of the steps <paramref name="claimer"/> still holds: checked just before sending, so a step cancelled meanwhile is not sent.</summary>
    public async Task<IReadOnlySet<long>> StillClaimedAsync(string claimer, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return (await connection.QueryAsync<long>(new CommandDefinition(NurtureSql.ClaimedBy, new { claimer }, cancellationToken: cancel))).ToHashSet();
    }

    /// <summary>
    /// A sent step, in one transaction: marked sent (only while the claim is still ours), the next step of the track
    /// scheduled, NurtureEmailSent and NurtureEmailScheduled in the outbox. False when the claim was lost.
    /// </summary>
    public Task<bool> RecordSentAsync(ClaimedStep step, string claimer, string messageId, DateTimeOffset sentAt, StepDue? next, CancellationToken cancel = default) =>
        FinishStepAsync(step, StoreSql.MarkStepSent, new { id = step.Id, claimer, messageId, at = sentAt }, sentAt, next, new NurtureEmailSent
        {
            EventId = Lifecycle.DerivedId(StepKey(step), "sent"), LeadId = step.LeadId, OccurredAt = sentAt,
            Track = step.Track, Step = step.Step, Template = step.Template, MessageId = messageId,
        }, cancel);

    /// <summary>A step whose condition does not hold: closed as skipped and the next one scheduled.</summary>
    public Task<bool> RecordSkippedAsync(ClaimedStep step, string claimer, string reason, DateTimeOffset at, StepDue? next, CancellationToken cancel = default) =>
        FinishStepAsync(step, NurtureSql.MarkSkipped, new { step.Id, claimer, reason = "skipped: " + reason }, at, next, null, cancel);

    /// <summary>Not now (outside the window, over the cap): back to pending at <paramref name="dueAt"/>, the claim not counted as an attempt.</summary>
    public async Task<bool> DeferAsync(ClaimedStep step, string claimer, DateTimeOffset dueAt, string reason, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteAsync(new CommandDefinition(NurtureSql.Defer, new { step.Id, claimer, dueAt, reason }, cancellationToken: cancel)) == 1;
    }

    /// <summary>The lead left nurture: every pending or claimed step of it is cancelled with the reason.</summary>
    public async Task EndNurtureAsync(string leadId, string reason, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await connection.ExecuteAsync(new CommandDefinition(StoreSql.CancelSteps, new { leadId, reason }, cancellationToken: cancel));
    }

    /// <summary>Steps per status, for tests and reports.</summary>
    public async Task<IReadOnlyDictionary<string, int>> CountStepsAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<StageCount>(new CommandDefinition(NurtureSql.CountSteps, cancellationToken: cancel));
        return rows.ToDictionary(r => r.Stage, r => r.Leads, StringComparer.Ordinal);
    }

    /// <summary>MQLs that entered the stage at or before <paramref name="before"/> and are still waiting for sales.</summary>
    public async Task<IReadOnlyList<(string LeadId, DateTimeOffset Since, string Source)>> MqlsWaitingSinceAsync(DateTimeOffset before, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return (await connection.QueryAsync<(string, DateTimeOffset, string)>(new CommandDefinition(NurtureSql.MqlsWaiting, new { before }, cancellationToken: cancel))).ToList();
    }

    /// <summary>Queues a breach once per MQL period (its id comes from the lead and when it became an MQL); true the first time.</summary>
    public async Task<bool> RecordHandOffBreachAsync(HandOffSlaBreached breach, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteAsync(new CommandDefinition(Database.Dialect.InsertOutboxIfNew,
            new { breach.EventId, Type = nameof(HandOffSlaBreached), Payload = EventJson.Write(breach), CreatedAt = breach.OccurredAt }, cancellationToken: cancel)) == 1;
    }

    /// <summary>Queues a message (MqlValueCalculated and the like) for the outbox relay.</summary>
    public async Task QueueAsync(NurtureMessage message, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await connection.ExecuteAsync(new CommandDefinition(Database.Dialect.InsertOutboxIfNew,
            new { message.EventId, Type = message.GetType().Name, Payload = EventJson.Write(message), CreatedAt = message.OccurredAt }, cancellationToken: cancel));
    }

    /// <summary>Identifies a step across claims: lead, track, enrolment and step.</summary>
    public static Guid StepKey(ClaimedStep step) => Lifecycle.DerivedId(Guid.Empty, $"step:{step.LeadId}/{step.Track}/{step.Enrolment}/{step.Step}");

    private async Task<bool> FinishStepAsync(ClaimedStep step, string markSql, object markParameters, DateTimeOffset at, StepDue? next, NurtureEmailSent? sent, CancellationToken cancel)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        // The lead left nurture while this email was on its way: the send is recorded, nothing follows it.
        if (await connection.ExecuteScalarAsync<string>(new CommandDefinition(NurtureSql.StepStatus, new { step.Id }, transaction, cancellationToken: cancel)) == "cancelled") next = null;
        if (await connection.ExecuteAsync(new CommandDefinition(markSql, markParameters, transaction, cancellationToken: cancel)) != 1)
        {
            await transaction.RollbackAsync(cancel);
            return false;
        }
        if (sent is not null) await Outbox(sent);
        if (next is not null)
        {
            await connection.ExecuteAsync(new CommandDefinition(Database.Dialect.InsertStepIfNew,
                new { step.LeadId, next.Track, step.Enrolment, next.Step, next.Template, next.DueAt }, transaction, cancellationToken: cancel));
            await Outbox(new NurtureEmailScheduled
            {
                EventId = Lifecycle.DerivedId(StepKey(step), "scheduled-next"), LeadId = step.LeadId, OccurredAt = at,
                Track = next.Track, Step = next.Step, Template = next.Template, DueAt = next.DueAt,
            });
        }
        await transaction.CommitAsync(cancel);
        return true;

        Task<int> Outbox(NurtureMessage m) => connection.ExecuteAsync(new CommandDefinition(Database.Dialect.InsertOutboxIfNew,
            new { m.EventId, Type = m.GetType().Name, Payload = EventJson.Write(m), CreatedAt = at }, transaction, cancellationToken: cancel));
    }
}

internal static class NurtureSql
{
    public const string StepStatus = "SELECT status FROM nurture_steps WHERE id = @Id";

    public const string RecentSends = "SELECT sent_at FROM nurture_steps WHERE lead_id = @leadId AND status = 'sent' AND sent_at > @since";

    public const string ClaimedBy = "SELECT id FROM nurture_steps WHERE claimed_by = @claimer AND status = 'claimed'";

    public const string MarkSkipped = """
        UPDATE nurture_steps SET status = 'cancelled', last_error = @reason, claimed_by = NULL, claim_until = NULL
        WHERE id = @Id AND claimed_by = @claimer AND status = 'claimed'
        """;

    public const string Defer = """
        UPDATE nurture_steps SET status = 'pending', due_at = @dueAt, last_error = @reason, claimed_by = NULL, claim_until = NULL, attempts = attempts - 1
        WHERE id = @Id AND claimed_by = @claimer AND status = 'claimed'
        """;

    public const string CountSteps = "SELECT status AS stage, COUNT(*) AS leads FROM nurture_steps GROUP BY status";

    public const string MqlsWaiting = "SELECT lead_id, stage_entered_at, source FROM leads WHERE stage = 'Mql' AND stage_entered_at <= @before";

    public const string MqlStates = "SELECT state, version FROM leads WHERE stage = 'Mql'";
}
