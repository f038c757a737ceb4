using System.Data.Common;
using System.Text;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

public sealed record StoredLead(Lead Lead, int Version);

/// <summary>Another writer changed the lead between our read and our write. Deciding the batch again is safe.</summary>
public sealed class LeadVersionConflictException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A lead row as a batch writes it: the lead, its score columns and the version it was read at (null: a new lead).</summary>
public sealed record LeadWrite(Lead Lead, double Score, double Fit, int? ReadVersion);

public sealed record TransitionWrite(string LeadId, Guid Cause, StageTransition Transition, string Source);

public sealed record StepWrite(string LeadId, string Track, int Enrolment, int Step, string Template, DateTimeOffset DueAt)
{
    /// <summary>Set when a later event of the same batch cancelled the step before it was ever stored.</summary>
    public string? CancelledBecause { get; set; }
}

public sealed record EventWrite(NurtureMessage Event, string? LeadId, string Outcome)
{
    public string Payload { get; set; } = EventJson.Write(Event);
}

/// <summary>
/// Everything one batch of events changes, collected while its events are decided and written together by
/// <see cref="LeadTransaction.SaveAsync"/>: rows of a kind go to the database in one multi-row statement.
/// </summary>
public sealed class LeadChanges
{
    public List<EventWrite> Events { get; } = [];
    public Dictionary<string, LeadWrite> Leads { get; } = new(StringComparer.Ordinal);
    public List<TransitionWrite> Transitions { get; } = [];
    /// <summary>Leads whose stored transitions a late event replaces with the rebuilt ones.</summary>
    public HashSet<string> TransitionsReplaced { get; } = new(StringComparer.Ordinal);
    public List<NurtureMessage> Outbox { get; } = [];
    /// <summary>Leads whose stored pending steps are cancelled, with the first reason given in the batch.</summary>
    public Dictionary<string, string> StepsCancelled { get; } = new(StringComparer.Ordinal);
    public List<StepWrite> Steps { get; } = [];
    public List<DealWon> Deals { get; } = [];
    public List<CampaignSpendRecorded> Spend { get; } = [];
    /// <summary>Suppressed addresses by their hash, with the reason and when.</summary>
    public Dictionary<string, (string Reason, DateTimeOffset At)> Suppressions { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Erased { get; } = new(StringComparer.Ordinal);
}

/// <summary>The leads, their history and everything a decision causes, read and written a batch at a time.</summary>
public sealed class LeadRecords(Database database)
{
    public Database Database { get; } = database;

    public async Task<LeadTransaction> BeginAsync(DateTimeOffset receivedAt, CancellationToken cancel)
    {
        var connection = await Database.OpenAsync(cancel);
        try
        {
            var transaction = await connection.BeginTransactionAsync(cancel);
            return new LeadTransaction(connection, transaction, Database.Dialect, receivedAt, cancel);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}

/// <summary>One batch's transaction: reads in one round trip per kind, writes in one multi-row statement per table.</summary>
public sealed class LeadTransaction(DbConnection connection, DbTransaction transaction, SqlDialect dialect, DateTimeOffset receivedAt, CancellationToken cancel) : IAsyncDisposable
{
    // SQL Server takes at most 2,100 parameters per command; the others far more. One limit keeps the SQL alike.
    private const int MaxParameters = 2000;

    public DateTimeOffset ReceivedAt { get; } = receivedAt;

    /// <summary>Which of these event ids are stored already (the inbox).</summary>
    public async Task<IReadOnlySet<Guid>> KnownEventsAsync(IReadOnlyCollection<Guid> ids)
    {
        var known = new HashSet<Guid>();
        foreach (var chunk in ids.Distinct().Chunk(MaxParameters))
        {
            known.UnionWith(await connection.QueryAsync<Guid>(Command(dialect.KnownEvents, dialect.Ids(chunk))));
        }
        return known;
    }

    /// <summary>
    /// The stored leads among <paramref name="ids"/> with their versions, and the last nurture enrolment of each; the
    /// leads stay locked for this transaction (see <see cref="SqlDialect.LockLeads"/>).
    /// </summary>
    public async Task<(IReadOnlyDictionary<string, StoredLead> Leads, IReadOnlyDictionary<string, int> Enrolments)> LoadLeadsAsync(IReadOnlyCollection<string> ids)
    {
        var leads = new Dictionary<string, StoredLead>(StringComparer.Ordinal);
        var enrolments = new Dictionary<string, int>(StringComparer.Ordinal);
        var ordered = ids.Distinct().Order(StringComparer.Ordinal).ToList();
        if (dialect.LockLeads is { } lockLeads && ordered.Count > 0) await connection.ExecuteAsync(Command(lockLeads, dialect.Ids(ordered)));
        foreach (var chunk in ordered.Chunk(MaxParameters))
        {
            using var grid = await connection.QueryMultipleAsync(Command(dialect.LeadsAndEnrolments, dialect.Ids(chunk)));
            foreach (var row in await grid.ReadAsync<(string LeadId, string State, int Version)>()) leads[row.LeadId] = new StoredLead(LeadStore.ReadState(row.State), row.Version);
            foreach (var row in await grid.ReadAsync<(string LeadId, int Enrolment)>()) enrolments[row.LeadId] = row.Enrolment;
        }
        return (leads, enrolments);
    }

    /// <summary>A lead's stored history in time order, for deciding it again when a late event arrives.</summary>
    public async Task<IReadOnlyList<NurtureMessage>> HistoryAsync(string leadId) =>
        (await connection.QueryAsync<string>(Command(StoreSql.SelectHistory, new { leadId }))).Select(EventJson.Parse).ToList();

    /// <summary>
    /// Writes the batch: each kind of row in as few statements as the parameter limit allows. A lead changed by another
    /// writer since it was read, or an event stored by another writer meanwhile, throws <see cref="LeadVersionConflictException"/>.
    /// </summary>
    public async Task SaveAsync(LeadChanges changes)
    {
        try
        {
            await InsertAsync("lead_events", ["event_id", "lead_id", "type", "occurred_at", "received_at", "outcome", "payload"], null,
                changes.Events.Select(e => new object?[] { e.Event.EventId, e.LeadId, e.Event.GetType().Name, e.Event.OccurredAt, ReceivedAt, LeadStore.Truncate(e.Outcome), e.Payload }));
            await InsertAsync("leads", LeadColumns, null, changes.Leads.Values.Where(l => l.ReadVersion is null).Select(LeadValues));
        }
        catch (DbException e) when (SqlDialect.IsUniqueViolation(e))
        {
            throw new LeadVersionConflictException("Another writer stored one of these events or leads first.", e);
        }
        await UpdateLeadsAsync(changes.Leads.Values.Where(l => l.ReadVersion is not null).ToList());

        foreach (var chunk in changes.TransitionsReplaced.Chunk(MaxParameters))
        {
            await connection.ExecuteAsync(Command(dialect.DeleteTransitions, dialect.Ids(chunk)));
        }
        await InsertAsync("stage_transitions", ["lead_id", "event_id", "from_stage", "to_stage", "at", "reason", "skipped", "definition_version", "source", "in_stage_seconds"], null,
            changes.Transitions.Select(t => new object?[]
            {
                t.LeadId, t.Cause, t.Transition.From.ToString(), t.Transition.To.ToString(), t.Transition.At, LeadStore.Truncate(t.Transition.Reason),
                string.Join(",", t.Transition.Skipped), t.Transition.DefinitionVersion, t.Source, t.Transition.InStage.TotalSeconds,
            }));
        await InsertAsync("outbox", ["message_id", "type", "payload", "created_at"], ["message_id"],
            changes.Outbox.DistinctBy(m => m.EventId).Select(m => new object?[] { m.EventId, m.GetType().Name, EventJson.Write(m), ReceivedAt }));

        foreach (var byReason in changes.StepsCancelled.GroupBy(c => c.Value, c => c.Key))
        {
            foreach (var chunk in byReason.Chunk(MaxParameters - 1))
            {
                var parameters = dialect.Ids(chunk);
                parameters.Add("reason", byReason.Key);
                await connection.ExecuteAsync(Command(dialect.CancelStepsOf, parameters));
            }
        }
        await InsertAsync("nurture_steps", ["lead_id", "track", "enrolment", "step", "template", "due_at", "status", "attempts", "last_error"], ["lead_id", "track", "enrolment", "step"],
            changes.Steps.Select(s => new object?[] { s.LeadId, s.Track, s.Enrolment, s.Step, s.Template, s.DueAt, s.CancelledBecause is null ? "pending" : "cancelled", 0, s.CancelledBecause }));

        await InsertAsync("deals", ["event_id", "lead_id", "revenue", "currency", "at"], null,
            changes.Deals.Select(d => new object?[] { d.EventId, d.LeadId, d.Revenue, d.Currency, d.OccurredAt }));
        await InsertAsync("spend", ["event_id", "channel", "amount", "currency", "period_start", "period_end"], null,
            changes.Spend.Select(s => new object?[]
            {
                s.EventId, s.Channel.Trim().ToLowerInvariant(), s.Amount, s.Currency, s.PeriodStart.ToDateTime(TimeOnly.MinValue), s.PeriodEnd.ToDateTime(TimeOnly.MinValue),
            }));
        await InsertAsync("suppressions", ["email_hash", "reason", "at"], ["email_hash"],
            changes.Suppressions.Select(s => new object?[] { s.Key, s.Value.Reason, s.Value.At }));
        foreach (var leadId in changes.Erased) await LeadErasure.EraseAsync(connection, transaction, leadId, cancel);
    }

    public Task CommitAsync() => transaction.CommitAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        await transaction.DisposeAsync();
        await connection.DisposeAsync();
    }

    private static readonly string[] LeadColumns =
    [
        "lead_id", "stage", "furthest_stage", "score", "fit", "source", "definition_version", "email", "first_name", "last_name", "company",
        "first_seen_at", "stage_entered_at", "first_mql_at", "deals_won", "revenue", "state", "version", "updated_at",
    ];

    private object?[] LeadValues(LeadWrite w)
    {
        var (lead, p) = (w.Lead, w.Lead.Profile);
        return
        [
            lead.Id, lead.Stage.ToString(), lead.Furthest.ToString(), w.Score, w.Fit, p.Source, lead.DefinitionVersion, p.Email, p.FirstName, p.LastName, p.Company,
            lead.FirstSeenAt, lead.StageEnteredAt, lead.FirstMqlAt, lead.DealsWon, lead.Revenue, LeadStore.WriteState(lead), (w.ReadVersion ?? 0) + 1, ReceivedAt,
        ];
    }

    /// <summary>Each lead updated only at the version it was read at; fewer rows than leads means another writer got there first.</summary>
    private async Task UpdateLeadsAsync(IReadOnlyList<LeadWrite> leads)
    {
        var perStatement = LeadColumns.Length + 1;
        foreach (var chunk in leads.Chunk(MaxParameters / perStatement))
        {
            var sql = new StringBuilder();
            var parameters = new DynamicParameters();
            var n = 0;
            foreach (var lead in chunk)
            {
                var values = LeadValues(lead);
                var set = new List<string>();
                for (var c = 1; c < LeadColumns.Length; c++)
                {
                    parameters.Add($"p{n}", values[c]);
                    set.Add($"{LeadColumns[c]} = @p{n++}");
                }
                parameters.Add($"p{n}", lead.Lead.Id);
                parameters.Add($"p{n + 1}", lead.ReadVersion);
                sql.Append("UPDATE leads SET ").AppendJoin(", ", set).Append($" WHERE lead_id = @p{n} AND version = @p{n + 1};\n");
                n += 2;
            }
            var updated = await connection.ExecuteAsync(new CommandDefinition(sql.ToString(), parameters, transaction, cancellationToken: cancel, flags: CommandFlags.NoCache));
            if (updated != chunk.Length)
            {
                throw new LeadVersionConflictException($"{chunk.Length - updated} of {chunk.Length} leads changed since they were read.");
            }
        }
    }

    /// <summary>Multi-row INSERT; with <paramref name="key"/> a row whose key is stored already is left as it is.</summary>
    private async Task InsertAsync(string table, string[] columns, string[]? key, IEnumerable<object?[]> rows)
    {
        foreach (var chunk in rows.Chunk(MaxParameters / columns.Length))
        {
            var parameters = new DynamicParameters();
            var n = 0;
            var tuples = chunk.Select(values =>
            {
                var names = new string[values.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    names[i] = $"@p{n}";
                    parameters.Add($"p{n++}", values[i]);
                }
                return "(" + string.Join(", ", names) + ")";
            }).ToList();
            var sql = dialect.InsertRows(table, columns, tuples, key);
            await connection.ExecuteAsync(new CommandDefinition(sql, parameters, transaction, cancellationToken: cancel, flags: CommandFlags.NoCache));
        }
    }

    private CommandDefinition Command(string sql, object parameters) => new(sql, parameters, transaction, cancellationToken: cancel);
}
