using System.Data.Common;
using System.Globalization;
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

/// <summary>A click on a nurture email's link, by the email's track and step, for the experiments' reports.</summary>
public sealed record ClickWrite(Guid EventId, string LeadId, string Track, int Step, DateTimeOffset At, bool ByMachine);

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
    public List<ClickWrite> Clicks { get; } = [];
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
    private int MaxParameters => dialect.ParametersPerStatement;

    public DateTimeOffset ReceivedAt { get; } = receivedAt;

    /// <summary>
    /// In one round trip: the stored leads among <paramref name="leadIds"/> with their versions and the last nurture
    /// enrolment of each, locked for this transaction (see <see cref="SqlDialect.LockLeads"/>), and which of
    /// <paramref name="eventIds"/> are stored already (the inbox). The inbox is read after the locks, so a copy of an
    /// event another worker was storing for the same lead is seen once that worker is through.
    /// </summary>
    public async Task<(IReadOnlyDictionary<string, StoredLead> Leads, IReadOnlyDictionary<string, int> Enrolments, IReadOnlySet<Guid> Known)> LoadAsync(
        IReadOnlyCollection<string> leadIds, IReadOnlyCollection<Guid> eventIds)
    {
        var leads = new Dictionary<string, StoredLead>(StringComparer.Ordinal);
        var enrolments = new Dictionary<string, int>(StringComparer.Ordinal);
        var known = new HashSet<Guid>();
        var ordered = leadIds.Distinct().Order(StringComparer.Ordinal).ToList();
        var reads = new RoundTrip(connection, transaction, cancel);
        if (dialect.PlanForTheTableAsItIs is { } planNow) reads.Add(planNow, []);
        if (dialect.LockLeads is { } lockLeads && ordered.Count > 0) reads.Add(lockLeads, "ids", dialect.IdList(ordered));
        var kinds = new List<char>();
        foreach (var chunk in ordered.Chunk(MaxParameters))
        {
            reads.Add(dialect.SelectLeads, "ids", dialect.IdList(chunk));
            reads.Add(dialect.SelectEnrolments, "ids", dialect.IdList(chunk));
            kinds.AddRange("LE");
        }
        foreach (var chunk in eventIds.Distinct().Chunk(MaxParameters))
        {
            reads.Add(dialect.KnownEvents, "ids", dialect.IdList(chunk));
            kinds.Add('K');
        }
        var first = reads.Count - kinds.Count;
        await reads.ReadAsync((i, row) =>
        {
            if (i < first) return;
            switch (kinds[i - first])
            {
                case 'L':
                    leads[row.GetString(0)] = new StoredLead(LeadStore.ReadState(row.GetString(1)), Convert.ToInt32(row.GetValue(2), CultureInfo.InvariantCulture));
                    break;
                case 'E':
                    enrolments[row.GetString(0)] = Convert.ToInt32(row.GetValue(1), CultureInfo.InvariantCulture);
                    break;
                default:
                    known.Add(row.GetValue(0) is Guid g ? g : Guid.Parse(row.GetString(0)));
                    break;
            }
        });
        return (leads, enrolments, known);
    }

    /// <summary>A lead's stored history in time order, for deciding it again when a late event arrives.</summary>
    public async Task<IReadOnlyList<NurtureMessage>> HistoryAsync(string leadId) =>
        (await connection.QueryAsync<string>(Command(StoreSql.SelectHistory, new { leadId }))).Select(EventJson.Parse).ToList();

    /// <summary>
    /// Writes the batch in one round trip where the provider allows (see <see cref="RoundTrip"/>): each kind of row in as
    /// few statements as the parameter limit allows. A lead changed by another writer since it was read, or an event
    /// stored by another writer meanwhile, throws <see cref="LeadVersionConflictException"/>.
    /// </summary>
    public async Task SaveAsync(LeadChanges changes, OutboxClaim? claim = null)
    {
        var writes = new RoundTrip(connection, transaction, cancel);
        Insert(writes, "lead_events", EventTable, null,
            changes.Events.Select(e => new object?[] { e.Event.EventId, e.LeadId, e.Event.GetType().Name, e.Event.OccurredAt, ReceivedAt, LeadStore.Truncate(e.Outcome), e.Payload }));
        Insert(writes, "leads", LeadTable, null, changes.Leads.Values.Where(l => l.ReadVersion is null).Select(LeadValues));
        var updates = UpdateLeads(writes, changes.Leads.Values.Where(l => l.ReadVersion is not null).ToList());

        foreach (var chunk in changes.TransitionsReplaced.Chunk(MaxParameters)) writes.Add(dialect.DeleteTransitions, "ids", dialect.IdList(chunk));
        Insert(writes, "stage_transitions", TransitionTable, null,
            changes.Transitions.Select(t => new object?[]
            {
                t.LeadId, t.Cause, t.Transition.From.ToString(), t.Transition.To.ToString(), t.Transition.At, LeadStore.Truncate(t.Transition.Reason),
                string.Join(",", t.Transition.Skipped), t.Transition.DefinitionVersion, t.Source, t.Transition.InStage.TotalSeconds,
            }));
        Insert(writes, "outbox", claim is null ? OutboxTable : ClaimedOutboxTable, ["message_id"],
            changes.Outbox.DistinctBy(m => m.EventId).Select(m => claim is null
                ? new object?[] { m.EventId, m.GetType().Name, EventJson.Write(m), ReceivedAt }
                : [m.EventId, m.GetType().Name, EventJson.Write(m), ReceivedAt, claim.Claimer, claim.Until]));

        // Before the new steps: a re-enrolled lead's old steps are cancelled, not its new ones.
        foreach (var byReason in changes.StepsCancelled.GroupBy(c => c.Value, c => c.Key))
        {
            foreach (var chunk in byReason.Chunk(MaxParameters - 1))
            {
                writes.Add(dialect.CancelStepsOf, [new("ids", dialect.IdList(chunk)), new("reason", byReason.Key)]);
            }
        }
        Insert(writes, "nurture_steps", StepTable, ["lead_id", "track", "enrolment", "step"],
            changes.Steps.Select(s => new object?[] { s.LeadId, s.Track, s.Enrolment, s.Step, s.Template, s.DueAt, s.CancelledBecause is null ? "pending" : "cancelled", 0, s.CancelledBecause }));

        Insert(writes, "deals", DealTable, null,
            changes.Deals.Select(d => new object?[] { d.EventId, d.LeadId, d.Revenue, d.Currency, d.OccurredAt }));
        Insert(writes, "email_clicks", ClickTable, ["event_id"],
            changes.Clicks.Select(c => new object?[] { c.EventId, c.LeadId, c.Track, c.Step, c.At, c.ByMachine ? 1 : 0 }));
        Insert(writes, "spend", SpendTable, null,
            changes.Spend.Select(s => new object?[]
            {
                s.EventId, s.Channel.Trim().ToLowerInvariant(), s.Amount, s.Currency, s.PeriodStart.ToDateTime(TimeOnly.MinValue), s.PeriodEnd.ToDateTime(TimeOnly.MinValue),
            }));
        Insert(writes, "suppressions", SuppressionTable, ["email_hash"],
            changes.Suppressions.Select(s => new object?[] { s.Key, s.Value.Reason, s.Value.At }));

        int[] affected;
        try
        {
            affected = await writes.ExecuteAsync();
        }
        catch (DbException e) when (SqlDialect.IsUniqueViolation(e))
        {
            throw new LeadVersionConflictException("Another writer stored one of these events or leads first.", e);
        }
        var stale = updates.Sum(u => u.Expected - affected[u.Statement]);
        if (stale > 0) throw new LeadVersionConflictException($"{stale} of {updates.Sum(u => u.Expected)} leads changed since they were read.");

        foreach (var leadId in changes.Erased) await LeadErasure.EraseAsync(connection, transaction, leadId, cancel);
    }

    public Task CommitAsync() => transaction.CommitAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        await transaction.DisposeAsync();
        await connection.DisposeAsync();
    }

    /// <summary>The leads table's columns in the order of <see cref="LeadValues"/>, with their PostgreSQL types (for the arrays of <see cref="ColumnArrays"/>).</summary>
    private static readonly (string Name, string PostgresType)[] LeadTable =
    [
        ("lead_id", "varchar"), ("stage", "text"), ("furthest_stage", "text"), ("score", "float8"), ("fit", "float8"), ("source", "text"),
        ("definition_version", "text"), ("email", "text"), ("first_name", "text"), ("last_name", "text"), ("company", "text"),
        ("first_seen_at", "timestamptz"), ("stage_entered_at", "timestamptz"), ("first_mql_at", "timestamptz"), ("deals_won", "int4"),
        ("revenue", "numeric"), ("state", "text"), ("version", "int4"), ("updated_at", "timestamptz"),
    ];

    private static readonly string[] LeadColumns = [.. LeadTable.Select(c => c.Name)];

    // The other tables a batch inserts into, each column with its PostgreSQL type, in the order of the values given.
    private static readonly (string Name, string PostgresType)[] EventTable =
    [
        ("event_id", "uuid"), ("lead_id", "text"), ("type", "text"), ("occurred_at", "timestamptz"), ("received_at", "timestamptz"), ("outcome", "text"), ("payload", "text"),
    ];

    private static readonly (string Name, string PostgresType)[] TransitionTable =
    [
        ("lead_id", "text"), ("event_id", "uuid"), ("from_stage", "text"), ("to_stage", "text"), ("at", "timestamptz"), ("reason", "text"), ("skipped", "text"),
        ("definition_version", "text"), ("source", "text"), ("in_stage_seconds", "float8"),
    ];

    private static readonly (string Name, string PostgresType)[] OutboxTable = [("message_id", "uuid"), ("type", "text"), ("payload", "text"), ("created_at", "timestamptz")];

    private static readonly (string Name, string PostgresType)[] ClaimedOutboxTable = [.. OutboxTable, ("claimed_by", "text"), ("claim_until", "timestamptz")];

    private static readonly (string Name, string PostgresType)[] StepTable =
    [
        ("lead_id", "text"), ("track", "text"), ("enrolment", "int4"), ("step", "int4"), ("template", "text"), ("due_at", "timestamptz"), ("status", "text"),
        ("attempts", "int4"), ("last_error", "text"),
    ];

    private static readonly (string Name, string PostgresType)[] ClickTable =
        [("event_id", "uuid"), ("lead_id", "text"), ("track", "text"), ("step", "int4"), ("at", "timestamptz"), ("by_machine", "int4")];

    private static readonly (string Name, string PostgresType)[] DealTable = [("event_id", "uuid"), ("lead_id", "text"), ("revenue", "numeric"), ("currency", "text"), ("at", "timestamptz")];

    private static readonly (string Name, string PostgresType)[] SpendTable =
    [
        ("event_id", "uuid"), ("channel", "text"), ("amount", "numeric"), ("currency", "text"), ("period_start", "date"), ("period_end", "date"),
    ];

    private static readonly (string Name, string PostgresType)[] SuppressionTable = [("email_hash", "text"), ("reason", "text"), ("at", "timestamptz")];

    private object?[] LeadValues(LeadWrite w)
    {
        var (lead, p) = (w.Lead, w.Lead.Profile);
        return
        [
            lead.Id, lead.Stage.ToString(), lead.Furthest.ToString(), w.Score, w.Fit, p.Source, lead.DefinitionVersion, p.Email, p.FirstName, p.LastName, p.Company,
            lead.FirstSeenAt, lead.StageEnteredAt, lead.FirstMqlAt, lead.DealsWon, lead.Revenue, LeadStore.WriteState(lead), (w.ReadVersion ?? 0) + 1, ReceivedAt,
        ];
    }

    /// <summary>
    /// Each lead updated only at the version it was read at; fewer rows than leads means another writer got there first.
    /// One statement on PostgreSQL; on SQLite one statement prepared once and run per lead; on SQL Server a statement per
    /// lead, as many as fit in one command.
    /// </summary>
    private List<(int Statement, int Expected)> UpdateLeads(RoundTrip writes, List<LeadWrite> leads)
    {
        if (leads.Count == 0) return [];
        if (dialect.Provider == DatabaseProvider.PostgreSql) return [(UpdateLeadsFromArrays(writes, leads), leads.Count)];
        if (dialect.Provider == DatabaseProvider.Sqlite)
        {
            var update = $"UPDATE leads SET {string.Join(", ", LeadColumns.Skip(1).Select(c => $"{c} = @{c}"))} WHERE lead_id = @lead_id AND version = @read_version";
            return [(writes.AddPerRow(update, [.. LeadColumns, "read_version"], leads.Select(l => (object?[])[.. LeadValues(l), l.ReadVersion])), leads.Count)];
        }
        var perLead = LeadColumns.Length + 1;
        var statements = new List<(int, int)>();
        foreach (var chunk in leads.Chunk(MaxParameters / perLead))
        {
            var sql = new StringBuilder();
            var parameters = new List<KeyValuePair<string, object?>>(chunk.Length * perLead);
            foreach (var lead in chunk)
            {
                var values = LeadValues(lead);
                var set = new List<string>();
                for (var c = 1; c < LeadColumns.Length; c++)
                {
                    set.Add($"{LeadColumns[c]} = @p{parameters.Count}");
                    parameters.Add(new($"p{parameters.Count}", values[c]));
                }
                sql.Append("UPDATE leads SET ").AppendJoin(", ", set).Append($" WHERE lead_id = @p{parameters.Count} AND version = @p{parameters.Count + 1};\n");
                parameters.Add(new($"p{parameters.Count}", lead.Lead.Id));
                parameters.Add(new($"p{parameters.Count}", lead.ReadVersion));
            }
            statements.Add((writes.Add(sql.ToString(), parameters), chunk.Length));
        }
        return statements;
    }

    /// <summary>
    /// PostgreSQL: the batch's leads in one statement, a column an array (a statement per lead cost the worker and the
    /// server a command and 21 parameters each, 39,000 of them in a drain of 50,000 events).
    /// </summary>
    private int UpdateLeadsFromArrays(RoundTrip writes, List<LeadWrite> leads)
    {
        var parameters = ColumnArrays(LeadTable, leads.Select(LeadValues).ToList());
        parameters.Add(new("read", leads.Select(l => l.ReadVersion!.Value).ToArray()));
        var sql = $"""
            UPDATE leads AS l SET {string.Join(", ", LeadColumns.Skip(1).Select(c => $"{c} = v.{c}"))}
            FROM unnest({string.Join(", ", LeadTable.Select((column, c) => $"@c{c}::{column.PostgresType}[]"))}, @read::int4[]) AS v({string.Join(", ", LeadColumns)}, read_version)
            WHERE l.lead_id = v.lead_id AND l.version = v.read_version
            """;
        return writes.Add(sql, parameters);
    }

    /// <summary>
    /// A column of each row as one array parameter, @c0, @c1 … in column order: statements whose text is the same
    /// whatever the number of rows, so Npgsql prepares them once (a multi-row VALUES list is new text for every batch
    /// size, parsed and planned each time, with a parameter per value).
    /// </summary>
    private static List<KeyValuePair<string, object?>> ColumnArrays((string Name, string PostgresType)[] table, List<object?[]> rows)
    {
        var parameters = new List<KeyValuePair<string, object?>>(table.Length + 1);
        for (var c = 0; c < table.Length; c++)
        {
            var column = c;
            object array = table[c].PostgresType switch
            {
                "float8" => rows.Select(r => r[column] is { } v ? Convert.ToDouble(v, CultureInfo.InvariantCulture) : (double?)null).ToArray(),
                "int4" => rows.Select(r => r[column] is { } v ? Convert.ToInt32(v, CultureInfo.InvariantCulture) : (int?)null).ToArray(),
                "numeric" => rows.Select(r => r[column] is { } v ? Convert.ToDecimal(v, CultureInfo.InvariantCulture) : (decimal?)null).ToArray(),
                // timestamptz takes UTC only.
                "timestamptz" => rows.Select(r => r[column] is DateTimeOffset at ? at.UtcDateTime : (DateTime?)null).ToArray(),
                "date" => rows.Select(r => r[column] is DateTime day ? DateOnly.FromDateTime(day) : (DateOnly?)null).ToArray(),
                "uuid" => rows.Select(r => (Guid?)r[column]).ToArray(),
                _ => rows.Select(r => (string?)r[column]).ToArray(),
            };
            parameters.Add(new($"c{c}", array));
        }
        return parameters;
    }

    /// <summary>
    /// Inserts rows; with <paramref name="key"/> a row whose key is stored already is left as it is. PostgreSQL: one
    /// statement over a column array each (<see cref="ColumnArrays"/>). SQLite: one statement run per row. SQL Server:
    /// multi-row statements, as many rows each as its parameter limit allows.
    /// </summary>
    private void Insert(RoundTrip writes, string table, (string Name, string PostgresType)[] typed, string[]? key, IEnumerable<object?[]> rows)
    {
        var columns = typed.Select(c => c.Name).ToArray();
        if (dialect.Provider == DatabaseProvider.PostgreSql)
        {
            var all = rows.ToList();
            if (all.Count == 0) return;
            var select = $"SELECT * FROM unnest({string.Join(", ", typed.Select((column, c) => $"@c{c}::{column.PostgresType}[]"))})";
            writes.Add(dialect.InsertRows(table, columns, select, key), ColumnArrays(typed, all));
            return;
        }
        if (dialect.Provider == DatabaseProvider.Sqlite)
        {
            var row = rows.ToList();
            if (row.Count > 0) writes.AddPerRow(dialect.InsertRows(table, columns, ["(" + string.Join(", ", columns.Select(c => "@" + c)) + ")"], key), columns, row);
            return;
        }
        foreach (var chunk in rows.Chunk(MaxParameters / columns.Length))
        {
            var parameters = new List<KeyValuePair<string, object?>>(chunk.Length * columns.Length);
            var tuples = chunk.Select(values =>
            {
                var names = new string[values.Length];
                for (var i = 0; i < values.Length; i++)
                {
                    names[i] = $"@p{parameters.Count}";
                    parameters.Add(new($"p{parameters.Count}", values[i]));
                }
                return "(" + string.Join(", ", names) + ")";
            }).ToList();
            writes.Add(dialect.InsertRows(table, columns, tuples, key), parameters);
        }
    }

    private CommandDefinition Command(string sql, object parameters) => new(sql, parameters, transaction, cancellationToken: cancel);
}
