using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

/// <summary>What happened to one event: applied (with the domain's decision) or a duplicate of one applied before.</summary>
public sealed record AppliedEvent(NurtureMessage Event, bool Duplicate, LeadDecision? Decision)
{
    /// <summary>A late event: the decision holds the lead's whole re-decided history, not only what this event changed.</summary>
    public bool Late { get; init; }
}

/// <summary>Another writer changed the lead between our read and our write. Retrying the whole transaction is safe.</summary>
public sealed class LeadVersionConflictException(string message, Exception? inner = null) : Exception(message, inner);

public sealed record ClaimedStep(long Id, string LeadId, string Track, int Enrolment, int Step, string Template, DateTimeOffset DueAt, int Attempts);

public sealed record OutboxMessage(long Id, Guid MessageId, string Type, string Payload);

public sealed record StoredLead(Lead Lead, int Version);

/// <summary>
/// Leads, their history and everything a decision causes, kept with Dapper. Each decision is stored in one transaction:
/// the event in the inbox (its id makes redelivery harmless), the lead with a version check, the transitions, the
/// messages to publish (the outbox) and the nurture steps scheduled or cancelled.
/// </summary>
public sealed partial class LeadStore(Database database)
{
    private static readonly JsonSerializerOptions StateJson = CreateStateJson();

    public Database Database { get; } = database;

    /// <summary>A test seam: runs after a lead is read and before it is written, so a test can force a version conflict.</summary>
    internal Func<string, Task>? AfterLeadRead { get; set; }

    /// <summary>Applies events in one transaction (a batch costs one commit). Throws <see cref="LeadVersionConflictException"/> when another writer got there first.</summary>
    public async Task<IReadOnlyList<AppliedEvent>> ApplyAsync(IReadOnlyList<NurtureMessage> events, Definition definition, DateTimeOffset receivedAt, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        var batch = new Batch(connection, transaction, Database.Dialect, definition, receivedAt, AfterLeadRead, cancel);
        var results = new List<AppliedEvent>(events.Count);
        try
        {
            foreach (var e in events) results.Add(await batch.ApplyAsync(e));
            await transaction.CommitAsync(cancel);
        }
        catch (DbException e) when (SqlDialect.IsUniqueViolation(e))
        {
            throw new LeadVersionConflictException("Another writer created the same lead at the same time.", e);
        }
        return results;
    }

    /// <summary>Applies with retries on version conflicts and transient errors (deadlocks, a busy SQLite file).</summary>
    public async Task<IReadOnlyList<AppliedEvent>> ApplyWithRetryAsync(IReadOnlyList<NurtureMessage> events, Definition definition, DateTimeOffset receivedAt, int attempts = 10, CancellationToken cancel = default)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await ApplyAsync(events, definition, receivedAt, cancel);
            }
            catch (Exception e) when (attempt < attempts && (e is LeadVersionConflictException || e is DbException d && SqlDialect.IsTransient(d)))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20 * attempt)), cancel);
            }
        }
    }

    public async Task<StoredLead?> LoadLeadAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var row = await connection.QuerySingleOrDefaultAsync<LeadRow>(new CommandDefinition(
            StoreSql.SelectLeadState, new { leadId }, cancellationToken: cancel));
        return row is null ? null : new StoredLead(ReadState(row.State), row.Version);
    }

    /// <summary>The stored history of a lead in time order, as the events were received (erased fields blanked).</summary>
    public async Task<IReadOnlyList<NurtureMessage>> HistoryAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var payloads = await connection.QueryAsync<string>(new CommandDefinition(
            StoreSql.SelectHistory, new { leadId }, cancellationToken: cancel));
        return payloads.Select(EventJson.Parse).ToList();
    }

    /// <summary>Claims up to <paramref name="max"/> due steps for <paramref name="claimer"/> until now + lease; a dead claimer's rows come back when its lease ends.</summary>
    public async Task<IReadOnlyList<ClaimedStep>> ClaimDueAsync(string claimer, DateTimeOffset now, TimeSpan lease, int max, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
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
            new { id, claimer, error = Truncate(error), retryAt }, cancellationToken: cancel)) == 1;
    }

    public async Task<IReadOnlyList<OutboxMessage>> ReadOutboxAsync(int max, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<OutboxRow>(new CommandDefinition(Database.Dialect.ReadOutbox, new { Max = max }, cancellationToken: cancel));
        return rows.Select(r => new OutboxMessage(r.Id, r.MessageId, r.Type, r.Payload)).ToList();
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> unpublished messages under a row lock (so two workers' relays never publish the
    /// same rows at once), hands them to <paramref name="publish"/> and marks them published in the same transaction.
    /// If publishing throws, nothing is marked and the rows are taken again later.
    /// </summary>
    public async Task<int> PublishOutboxAsync(int max, Func<IReadOnlyList<OutboxMessage>, Task> publish, DateTimeOffset at, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        var rows = (await connection.QueryAsync<OutboxRow>(new CommandDefinition(Database.Dialect.ClaimOutbox, new { Max = max }, transaction, cancellationToken: cancel)))
            .Select(r => new OutboxMessage(r.Id, r.MessageId, r.Type, r.Payload)).ToList();
        if (rows.Count > 0)
        {
            await publish(rows);
            foreach (var chunk in rows.Select(r => r.Id).Chunk(500))
            {
                await connection.ExecuteAsync(new CommandDefinition(Database.Dialect.MarkPublished, new { at, ids = chunk }, transaction, cancellationToken: cancel));
            }
        }
        await transaction.CommitAsync(cancel);
        return rows.Count;
    }

    /// <summary>An event that could not be processed, kept with its reason.</summary>
    public async Task RecordRejectedAsync(string origin, string reason, string payload, DateTimeOffset at, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await connection.ExecuteAsync(new CommandDefinition(
            StoreSql.InsertRejected,
            new { at, origin = origin.Length <= 64 ? origin : origin[..64], reason = Truncate(reason), payload }, cancellationToken: cancel));
    }

    public async Task<bool> IsSuppressedAsync(string email, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            StoreSql.CountSuppressions, new { hash = EmailHash(email) }, cancellationToken: cancel)) > 0;
    }

    public async Task<IReadOnlyDictionary<string, decimal>> ReadSpendAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<SpendRow>(new CommandDefinition(
            StoreSql.SpendByChannel, cancellationToken: cancel));
        return rows.ToDictionary(r => r.Channel, r => Money(r.Amount), StringComparer.Ordinal);
    }

    public static string EmailHash(string email) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(email.Trim().ToLowerInvariant())));

    internal static Lead ReadState(string json) => JsonSerializer.Deserialize<Lead>(json, StateJson)!;

    internal static string WriteState(Lead lead) => JsonSerializer.Serialize(lead, StateJson);

    /// <summary>Sums come back as INTEGER, REAL, NUMERIC or DECIMAL depending on the provider and the values.</summary>
    private static decimal Money(object? value) => value is null or DBNull ? 0m : decimal.Round(Convert.ToDecimal(value, System.Globalization.CultureInfo.InvariantCulture), 2);

    private static string Truncate(string text) => text.Length <= 2000 ? text : text[..2000];

    private static JsonSerializerOptions CreateStateJson()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        return options;
    }

    /// <summary>One transaction's work: leads read once and kept with their versions while the batch goes on.</summary>
    private sealed class Batch(DbConnection connection, DbTransaction transaction, SqlDialect dialect, Definition definition, DateTimeOffset receivedAt, Func<string, Task>? afterLeadRead, CancellationToken cancel)
    {
        private readonly Dictionary<string, StoredLead?> _leads = new(StringComparer.Ordinal);

        private Task<int> Execute(string sql, object parameters) =>
            connection.ExecuteAsync(new CommandDefinition(sql, parameters, transaction, cancellationToken: cancel));

        public async Task<AppliedEvent> ApplyAsync(NurtureMessage message)
        {
            var lead = message as LeadEvent;
            var isNew = await Execute(dialect.InsertEventIfNew, new
            {
                message.EventId,
                lead?.LeadId,
                Type = message.GetType().Name,
                message.OccurredAt,
                ReceivedAt = receivedAt,
                Payload = EventJson.Write(message),
            }) == 1;
            if (!isNew) return new AppliedEvent(message, Duplicate: true, Decision: null);

            if (message is CampaignSpendRecorded spend)
            {
                await Execute(StoreSql.InsertSpend, new
                {
                    spend.EventId, Channel = spend.Channel.Trim().ToLowerInvariant(), spend.Amount, spend.Currency,
                    PeriodStart = spend.PeriodStart.ToDateTime(TimeOnly.MinValue), PeriodEnd = spend.PeriodEnd.ToDateTime(TimeOnly.MinValue),
                });
                return new AppliedEvent(message, false, null);
            }
            if (lead is null) return new AppliedEvent(message, false, null);

            var stored = await LoadAsync(lead.LeadId);
            if (afterLeadRead is not null) await afterLeadRead(lead.LeadId);
            if (stored is not null && Lifecycle.IsLate(stored.Lead, lead)) return await ApplyLateAsync(stored, lead);
            var decision = Lifecycle.Decide(stored?.Lead, lead, definition);
            await SaveLeadAsync(stored, decision);
            await Execute(StoreSql.UpdateEventOutcome, new { outcome = Outcome(decision), lead.EventId });

            foreach (var t in decision.Transitions) await InsertTransitionAsync(lead.LeadId, lead.EventId, t, decision.Lead.Profile.Source);
            foreach (var outgoing in decision.Outgoing) await AddToOutboxAsync(outgoing);
            await NurtureAsync(lead, decision);
            await SideRecordsAsync(lead, stored?.Lead, decision);
            return new AppliedEvent(message, false, decision);
        }

        /// <summary>
        /// An event older than the lead's latest: the stored history (which now holds it) is decided again in order, so
        /// competing consumers and redelivery end where in-order delivery would. The transitions are replaced by the rebuilt ones.
        /// </summary>
        private async Task<AppliedEvent> ApplyLateAsync(StoredLead stored, LeadEvent late)
        {
            var payloads = await connection.QueryAsync<string>(new CommandDefinition(
                StoreSql.SelectHistory, new { leadId = late.LeadId }, transaction, cancellationToken: cancel));
            var rebuilt = Lifecycle.Redecide(stored.Lead, payloads.Select(EventJson.Parse).OfType<LeadEvent>(), late, definition);
            var decision = rebuilt.Decision;
            await SaveLeadAsync(stored, decision);
            await Execute(StoreSql.UpdateEventOutcome, new { outcome = Truncate("late, history decided again: " + Outcome(decision)), late.EventId });

            await Execute(StoreSql.DeleteTransitions, new { leadId = late.LeadId });
            foreach (var (cause, t) in rebuilt.Transitions) await InsertTransitionAsync(late.LeadId, cause, t, decision.Lead.Profile.Source);
            foreach (var outgoing in decision.Outgoing) await AddToOutboxAsync(outgoing, ifNew: true);
            await NurtureAsync(late, decision);
            await SideRecordsAsync(late, stored.Lead, decision);
            return new AppliedEvent(late, false, decision) { Late = true };
        }

        /// <summary>A decision with no event behind it (the decay job's re-score): the lead, its transitions and messages.</summary>
        public async Task ApplyRescoreAsync(StoredLead stored, LeadDecision decision, Guid cause)
        {
            await SaveLeadAsync(stored, decision);
            foreach (var t in decision.Transitions) await InsertTransitionAsync(decision.Lead.Id, cause, t, decision.Lead.Profile.Source);
            foreach (var outgoing in decision.Outgoing) await AddToOutboxAsync(outgoing, ifNew: true);
        }

        private Task<int> InsertTransitionAsync(string leadId, Guid cause, StageTransition t, string source) => Execute(StoreSql.InsertTransition, new
        {
            LeadId = leadId, EventId = cause, From = t.From.ToString(), To = t.To.ToString(), t.At, Reason = Truncate(t.Reason),
            Skipped = string.Join(",", t.Skipped), t.DefinitionVersion, Source = source, InStageSeconds = t.InStage.TotalSeconds,
        });

        private async Task<StoredLead?> LoadAsync(string leadId)
        {
            if (_leads.TryGetValue(leadId, out var cached)) return cached;
            var row = await connection.QuerySingleOrDefaultAsync<LeadRow>(new CommandDefinition(
                StoreSql.SelectLeadState, new { leadId }, transaction, cancellationToken: cancel));
            var stored = row is null ? null : new StoredLead(ReadState(row.State), row.Version);
            _leads[leadId] = stored;
            return stored;
        }

        private async Task SaveLeadAsync(StoredLead? stored, LeadDecision decision)
        {
            var lead = decision.Lead;
            var p = lead.Profile;
            var row = new
            {
                LeadId = lead.Id, Stage = lead.Stage.ToString(), FurthestStage = lead.Furthest.ToString(), Score = decision.Score.Total,
                decision.Score.Fit, p.Source, lead.DefinitionVersion, p.Email, p.FirstName, p.LastName, p.Company,
                lead.FirstSeenAt, lead.StageEnteredAt, lead.FirstMqlAt, lead.DealsWon, lead.Revenue, State = WriteState(lead),
                Version = stored?.Version ?? 0, UpdatedAt = receivedAt,
            };
            if (stored is null)
            {
                await Execute(StoreSql.InsertLead, row);
            }
            else if (await Execute(StoreSql.UpdateLeadIfVersion, row) != 1)
            {
                throw new LeadVersionConflictException($"Lead '{lead.Id}' changed since it was read at version {stored.Version}.");
            }
            _leads[lead.Id] = new StoredLead(lead, (stored?.Version ?? 0) + 1);
        }

        private Task<int> AddToOutboxAsync(NurtureMessage message, bool ifNew = false) => Execute(
            ifNew ? dialect.InsertOutboxIfNew : StoreSql.InsertOutbox,
            new { message.EventId, Type = message.GetType().Name, Payload = EventJson.Write(message), CreatedAt = receivedAt });

        private async Task NurtureAsync(LeadEvent cause, LeadDecision decision)
        {
            switch (decision.Nurture)
            {
                case NurtureChange.Exit:
                    await CancelStepsAsync(cause.LeadId, decision.NurtureReason ?? "left nurture");
                    break;
                case NurtureChange.Enrol:
                    // A recycled lead re-enters its track as a new enrolment; what was pending from the last one is cancelled.
                    await CancelStepsAsync(cause.LeadId, "re-enrolled");
                    var enrolment = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
                        StoreSql.NextEnrolment, new { cause.LeadId }, transaction, cancellationToken: cancel));
                    if (NurturePlan.First(decision.Lead, cause.OccurredAt, definition) is { } first)
                    {
                        await Execute(dialect.InsertStepIfNew, new { cause.LeadId, first.Track, Enrolment = enrolment, first.Step, first.Template, first.DueAt });
                        await AddToOutboxAsync(new NurtureEmailScheduled
                        {
                            EventId = Lifecycle.DerivedId(cause.EventId, $"scheduled:{first.Track}:{enrolment}:{first.Step}"),
                            LeadId = cause.LeadId, OccurredAt = cause.OccurredAt, Track = first.Track, Step = first.Step, Template = first.Template, DueAt = first.DueAt,
                        });
                    }
                    break;
            }
        }

        private Task<int> CancelStepsAsync(string leadId, string reason) => Execute(
            StoreSql.CancelSteps,
            new { leadId, reason });

        private async Task SideRecordsAsync(LeadEvent e, Lead? before, LeadDecision decision)
        {
            var email = decision.Lead.Profile.Email ?? before?.Profile.Email;
            switch (e)
            {
                case DealWon w:
                    await Execute(StoreSql.InsertDeal,
                        new { w.EventId, w.LeadId, w.Revenue, w.Currency, w.OccurredAt });
                    break;
                case LeadUnsubscribed when email is not null:
                    await Execute(dialect.InsertSuppressionIfNew, new { EmailHash = EmailHash(email), Reason = "unsubscribed", At = e.OccurredAt });
                    break;
                case EmailBounced { Kind: BounceKind.Hard } when email is not null:
                    await Execute(dialect.InsertSuppressionIfNew, new { EmailHash = EmailHash(email), Reason = "hard bounce", At = e.OccurredAt });
                    break;
                case LeadErased:
                case LeadCaptured when decision.Lead.Erased:
                    // Also a capture that arrives after the erase: its stored copy is blanked too.
                    await EraseHistoryAsync(e.LeadId);
                    break;
            }
        }

        /// <summary>A privacy erase blanks the personal fields in the stored history too, not only on the lead.</summary>
        private async Task EraseHistoryAsync(string leadId)
        {
            var captured = await connection.QueryAsync<(Guid EventId, string Payload)>(new CommandDefinition(
                StoreSql.SelectCapturedPayloads, new { leadId }, transaction, cancellationToken: cancel));
            foreach (var (eventId, payload) in captured)
            {
                var c = (LeadCaptured)EventJson.Parse(payload);
                var blank = c with { Email = "erased@erased.invalid", FirstName = null, LastName = null, Company = null, Role = null, Consent = false };
                await Execute(StoreSql.UpdateEventPayload, new { payload = EventJson.Write(blank), eventId });
            }
        }

        private static string Outcome(LeadDecision d) => Truncate(d.Ignored is { } why
            ? $"ignored: {why}"
            : d.Transitions.Count > 0 ? string.Join("; ", d.Transitions.Select(t => $"{t.From}→{t.To}")) : $"score {d.Score.Total}");
    }

    private sealed class LeadRow
    {
        public string State { get; set; } = "";
        public int Version { get; set; }
    }

    private sealed class ClaimedStepRow
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

    private sealed class OutboxRow
    {
        public long Id { get; set; }
        public Guid MessageId { get; set; }
        public string Type { get; set; } = "";
        public string Payload { get; set; } = "";
    }

    private sealed class StageCount
    {
        public string Stage { get; set; } = "";
        public int Leads { get; set; }
    }

    private sealed class SpendRow
    {
        public string Channel { get; set; } = "";
        public object? Amount { get; set; }
    }
}
