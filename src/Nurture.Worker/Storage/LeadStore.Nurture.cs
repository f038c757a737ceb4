using System.Data.Common;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

/// <summary>What the nurture jobs store: sends and their next steps, deferrals, skips, hand-off SLA breaches, re-scores.</summary>
public sealed partial class LeadStore
{
    /// <summary>Claims up to <paramref name="max"/> due steps for <paramref name="claimer"/> until now + lease; a dead claimer's rows come back when its lease ends.</summary>
    public async Task<IReadOnlyList<ClaimedStep>> ClaimDueAsync(string claimer, DateTimeOffset now, TimeSpan lease, int max, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await ClaimAsync(connection, claimer, now, lease, max, cancel);
    }

    /// <summary>
    /// Claims a batch as <see cref="ClaimDueAsync"/> does, with everything the send rules need read in the same visit:
    /// each step's lead, the lead's sends since <paramref name="sentSince"/> (the frequency cap) and whether its address
    /// is suppressed. A batch costs three statements whatever its size, instead of three reads per step.
    /// </summary>
    public async Task<IReadOnlyList<DueStep>> ClaimDueWithLeadsAsync(string claimer, DateTimeOffset now, TimeSpan lease, int max, DateTimeOffset sentSince, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var steps = await ClaimAsync(connection, claimer, now, lease, max, cancel);
        if (steps.Count == 0) return [];
        var ids = steps.Select(s => s.Id).ToArray();
        var rows = await connection.QueryAsync<ContextRow>(new CommandDefinition(Database.Dialect.DueStepContext, new { ids, since = sentSince }, cancellationToken: cancel));
        var leads = new Dictionary<long, Lead>();
        var sends = new Dictionary<long, List<DateTimeOffset>>();
        foreach (var row in rows)
        {
            if (row.State is { } state && !leads.ContainsKey(row.StepId)) leads[row.StepId] = ReadState(state);
            if (row.SentAt is { } at) (sends.TryGetValue(row.StepId, out var list) ? list : sends[row.StepId] = []).Add(at);
        }
        var hashes = leads.Values.Select(l => l.Profile.Email).OfType<string>().Select(EmailHash).Distinct().ToArray();
        var suppressed = hashes.Length == 0 ? [] : (await connection.QueryAsync<string>(new CommandDefinition(
            Database.Dialect.SuppressedAmong, new { hashes }, cancellationToken: cancel))).Select(h => h.Trim()).ToHashSet(StringComparer.Ordinal);
        return steps.Select(s =>
        {
            var lead = leads.GetValueOrDefault(s.Id);
            return new DueStep(s, lead, sends.TryGetValue(s.Id, out var at) ? at : [],
                lead?.Profile.Email is { } email && suppressed.Contains(EmailHash(email)));
        }).ToList();
    }

    private async Task<IReadOnlyList<ClaimedStep>> ClaimAsync(DbConnection connection, string claimer, DateTimeOffset now, TimeSpan lease, int max, CancellationToken cancel)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        var claimed = await connection.QueryAsync<ClaimedStepRow>(new CommandDefinition(Database.Dialect.ClaimDueSteps,
            new { Claimer = claimer, Now = now, Until = now + lease, Max = max }, transaction, cancellationToken: cancel));
        await transaction.CommitAsync(cancel);
        return claimed.Select(r => new ClaimedStep(r.Id, r.LeadId, r.Track, r.Enrolment, r.Step, r.Template, r.DueAt, r.Attempts)).OrderBy(s => s.DueAt).ToList();
    }

    /// <summary>Marks a claimed step sent; false when the claim was lost (the lease ran out and someone else took it).</summary>
    public async Task<bool> MarkSentAsync(long id, string claimer, string messageId, DateTimeOffset at, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteAsync(new CommandDefinition(StoreSql.MarkStepSent, new { id, claimer, messageId, at }, cancellationToken: cancel)) == 1;
    }

    /// <summary>Records a failed send: back to pending at <paramref name="retryAt"/>, or failed for good when it is null.</summary>
    public async Task<bool> MarkFailedAsync(long id, string claimer, string error, DateTimeOffset? retryAt, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteAsync(new CommandDefinition(retryAt is null ? StoreSql.MarkStepFailed : StoreSql.MarkStepRetry,
            new { id, claimer, error = error.Length <= 2000 ? error : error[..2000], retryAt }, cancellationToken: cancel)) == 1;
    }

    /// <summary>
    /// Sent steps, each recorded as soon as the server accepted it: marked sent (only while the claim is still ours), the
    /// next step of the track scheduled (unless the lead left nurture meanwhile), NurtureEmailSent and
    /// NurtureEmailScheduled in the outbox. All in one transaction and one commit (on PostgreSQL also one round trip).
    /// For each, in order, false when its claim was lost.
    /// </summary>
    public async Task<IReadOnlyList<bool>> RecordSentAsync(IReadOnlyList<SentEmail> sends, string claimer, CancellationToken cancel = default)
    {
        if (sends.Count == 0) return [];
        var rows = sends.Select(s =>
        {
            var step = s.Step;
            var sent = new NurtureEmailSent
            {
                EventId = Lifecycle.DerivedId(StepKey(step), "sent"), LeadId = step.LeadId, OccurredAt = s.SentAt,
                Track = step.Track, Step = step.Step, Template = step.Template, MessageId = s.MessageId,
            };
            var scheduled = s.Next is not { } next ? null : new NurtureEmailScheduled
            {
                EventId = Lifecycle.DerivedId(StepKey(step), "scheduled-next"), LeadId = step.LeadId, OccurredAt = s.SentAt,
                Track = next.Track, Step = next.Step, Template = next.Template, DueAt = next.DueAt,
            };
            return (s, sent, scheduled);
        }).ToList();
        await using var connection = await Database.OpenAsync(cancel);
        // PostgreSQL: one Npgsql batch, one round trip, which runs as one implicit transaction. The others: a transaction.
        await using var transaction = Database.Provider == DatabaseProvider.PostgreSql ? null : await connection.BeginTransactionAsync(cancel);
        var trip = new RoundTrip(connection, transaction, cancel);
        foreach (var (s, sent, scheduled) in rows)
        {
            trip.Add(Database.Dialect.RecordStepSent,
            [
                new("Id", s.Step.Id), new("Claimer", claimer), new("MessageId", s.MessageId), new("At", s.SentAt),
                new("LeadId", s.Step.LeadId), new("Enrolment", s.Step.Enrolment), new("HasNext", s.Next is null ? 0 : 1),
                new("NextTrack", s.Next?.Track), new("NextStep", s.Next?.Step), new("NextTemplate", s.Next?.Template), new("NextDueAt", s.Next?.DueAt),
                new("SentEventId", sent.EventId), new("SentPayload", EventJson.Write(sent)),
                new("NextEventId", scheduled?.EventId), new("NextPayload", scheduled is null ? null : EventJson.Write(scheduled)),
            ]);
        }
        var marked = new bool[rows.Count];
        await trip.ReadAsync((i, reader) => marked[i] = Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) == 1);
        if (transaction is not null) await transaction.CommitAsync(cancel);
        return marked;
    }

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
    public Task<IReadOnlyDictionary<string, int>> CountStepsAsync(CancellationToken cancel = default) => ReadAsync(StepCountsAsync, cancel);

    private static async Task<IReadOnlyDictionary<string, int>> StepCountsAsync(Reads reads) =>
        (await reads.QueryAsync<StageCount>(NurtureSql.CountSteps)).ToDictionary(r => r.Stage, r => r.Leads, StringComparer.Ordinal);

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

/// <summary>A step this worker holds until its lease ends.</summary>
public sealed record ClaimedStep(long Id, string LeadId, string Track, int Enrolment, int Step, string Template, DateTimeOffset DueAt, int Attempts);

/// <summary>A step the mail server accepted: the Message-ID it went out with, when, and the track's next step (null: none, or the lead leaves nurture).</summary>
public sealed record SentEmail(ClaimedStep Step, string MessageId, DateTimeOffset SentAt, StepDue? Next);

/// <summary>A claimed step with what the send rules need: its lead (null when the lead is gone), the lead's recent sends, and whether the address is suppressed.</summary>
public sealed record DueStep(ClaimedStep Step, Lead? Lead, IReadOnlyList<DateTimeOffset> RecentSends, bool Suppressed);

internal sealed class ClaimedStepRow
{
    public long Id { get; set; }
    public string LeadId { get; set; } = "";
    public string Track { get; set; } = "";
    public int Enrolment { get; set; }
    public int Step { get; set; }
    public string Template { get; set; } = "";
    public DateTimeOffset DueAt { get; set; }
    public int Attempts { get; set; }
}

internal sealed class ContextRow
{
    public long StepId { get; set; }
    public string? State { get; set; }
    public DateTimeOffset? SentAt { get; set; }
}
