using System.Data;
using System.Data.Common;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

public sealed record DayCount(string Day, string Series, int Count);

/// <summary>MQLs per source: the cohorts old enough to count for the close rate (sources without one left out), and every MQL each source ever brought.</summary>
public sealed record MqlCohorts(IReadOnlyList<CohortCounts> OldEnough, IReadOnlyList<CohortCounts> Ever);

/// <summary>What the funnel report shows, read together (<see cref="LeadStore.ReadFunnelFiguresAsync"/>).</summary>
public sealed record FunnelFigures(
    MqlCohorts Cohorts,
    IReadOnlyDictionary<string, decimal> Spend,
    IReadOnlyDictionary<LeadStage, int> LeadsPerStage,
    IReadOnlyList<FunnelStage> Funnel,
    IReadOnlyDictionary<string, int> Emails,
    int HandOffBreaches,
    IReadOnlyList<DayCount> Timeline);

public sealed record TimeInStage(LeadStage Stage, int Leads, double AverageDays, double LongestDays);

public sealed class LeadHistoryRow
{
    public string Type { get; init; } = "";
    public DateTimeOffset OccurredAt { get; init; }
    public DateTimeOffset ReceivedAt { get; init; }
    public string? Outcome { get; init; }
}

public sealed class LeadTransitionRow
{
    public string FromStage { get; init; } = "";
    public string ToStage { get; init; } = "";
    public DateTimeOffset At { get; init; }
    public string Reason { get; init; } = "";
    public string? Skipped { get; init; }
    public string? DefinitionVersion { get; init; }
}

public sealed class LeadStepRow
{
    public string Track { get; init; } = "";
    public int Enrolment { get; init; }
    public int Step { get; init; }
    public string Template { get; init; } = "";
    public DateTimeOffset DueAt { get; init; }
    public string Status { get; init; } = "";
    public DateTimeOffset? SentAt { get; init; }
    public string? LastError { get; init; }
    public int Attempts { get; init; }
}

/// <summary>What the HTTP API, the dashboard and the metrics read: counted in SQL, never by loading every lead.</summary>
public sealed partial class LeadStore
{
    /// <summary>
    /// Everything the funnel report shows, read in one snapshot of the database: the cohorts, spend, stage counts,
    /// funnel, steps, breaches and timeline agree with each other even while events are stored, so its figures can be
    /// recomputed from one another. On SQL Server each statement reads what was committed when it ran.
    /// </summary>
    public Task<FunnelFigures> ReadFunnelFiguresAsync(DateTimeOffset cohortCutoff, DateTimeOffset timelineSince, CancellationToken cancel = default) =>
        ReadTogetherAsync(async reads =>
        {
            var cohorts = await CohortsAsync(reads, cohortCutoff);
            var spend = await SpendAsync(reads);
            var leadsPerStage = await StageCountsAsync(reads);
            var funnel = await FunnelAsync(reads, leadsPerStage);
            var steps = await StepCountsAsync(reads);
            var breaches = await reads.ScalarAsync<int>(ReportSql.CountHandOffBreaches);
            var timeline = await TimelineAsync(reads, timelineSince);
            return new FunnelFigures(cohorts, spend, leadsPerStage, funnel, steps, breaches, timeline);
        }, cancel);

    /// <summary>One statement's read, on a connection of its own.</summary>
    private async Task<T> ReadAsync<T>(Func<Reads, Task<T>> read, CancellationToken cancel)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await read(new Reads(connection, null, cancel));
    }

    /// <summary>
    /// Reads that belong together, on one connection in one transaction that sees one snapshot. None on SQL Server: there
    /// snapshot isolation needs ALLOW_SNAPSHOT_ISOLATION on the database, and REPEATABLE READ would hold writers back
    /// while the reads run, so each statement reads what was committed when it ran.
    /// </summary>
    private async Task<T> ReadTogetherAsync<T>(Func<Reads, Task<T>> read, CancellationToken cancel)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var snapshot = Database.Provider switch
        {
            // REPEATABLE READ is PostgreSQL's snapshot isolation, taken at the first statement; a transaction that only reads never fails on it.
            DatabaseProvider.PostgreSql => await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancel),
            // In WAL mode a deferred transaction reads one snapshot from its first read to its end, and never takes the write lock.
            DatabaseProvider.Sqlite => ((Microsoft.Data.Sqlite.SqliteConnection)connection).BeginTransaction(deferred: true),
            _ => null,
        };
        var result = await read(new Reads(connection, snapshot, cancel));
        if (snapshot is not null) await snapshot.CommitAsync(cancel);
        return result;
    }

    /// <summary>Leads in each stage now, every stage present (zero when empty).</summary>
    public Task<IReadOnlyDictionary<LeadStage, int>> ReadStageCountsAsync(CancellationToken cancel = default) => ReadAsync(StageCountsAsync, cancel);

    private static async Task<IReadOnlyDictionary<LeadStage, int>> StageCountsAsync(Reads reads)
    {
        var counts = Enum.GetValues<LeadStage>().ToDictionary(s => s, _ => 0);
        foreach (var row in await reads.QueryAsync<StageCount>(StoreSql.CountByStage)) counts[Enum.Parse<LeadStage>(row.Stage)] = row.Leads;
        return counts;
    }

    /// <summary>
    /// The funnel from the recorded transitions, counted in SQL: a stage is reached when a transition entered it (every lead
    /// entered Lead), skipped when a transition jumped over it and none ever entered it. Never from the furthest stage, which would invent the stages in between.
    /// </summary>
    public Task<IReadOnlyList<FunnelStage>> ReadFunnelAsync(CancellationToken cancel = default) =>
        ReadTogetherAsync(async reads => await FunnelAsync(reads, await StageCountsAsync(reads)), cancel);

    /// <param name="reads">Where to read.</param>
    /// <param name="now">The leads in each stage now, read already: every lead entered Lead.</param>
    private static async Task<IReadOnlyList<FunnelStage>> FunnelAsync(Reads reads, IReadOnlyDictionary<LeadStage, int> now)
    {
        // One statement for every stage's entries and one for every stage's skips: each reads the history once, not once a stage.
        var reached = (await reads.QueryAsync<StageCount>(ReportSql.CountEntered)).ToDictionary(r => Enum.Parse<LeadStage>(r.Stage), r => r.Leads);
        reached[LeadStage.Lead] = now.Values.Sum();
        var skipped = (await reads.QueryAsync<StageCount>(ReportSql.CountSkipped)).ToDictionary(r => Enum.Parse<LeadStage>(r.Stage), r => r.Leads);
        return Funnel.From(reached, skipped, now);
    }

    /// <summary>
    /// The MQL cohorts per source, counted in SQL in one pass over the MQLs: those old enough to count (first MQL at or
    /// before <paramref name="cutoff"/>), with the revenue's squares for its spread, and every MQL a source ever brought.
    /// </summary>
    public Task<MqlCohorts> ReadCohortsAsync(DateTimeOffset cutoff, CancellationToken cancel = default) => ReadAsync(reads => CohortsAsync(reads, cutoff), cancel);

    private static async Task<MqlCohorts> CohortsAsync(Reads reads, DateTimeOffset cutoff)
    {
        var rows = (await reads.QueryAsync<CohortRevenueRow>(ReportSql.CohortsBySource, new { cutoff })).ToList();
        return new MqlCohorts(
            rows.Where(r => r.Mqls > 0).Select(r => new CohortCounts(r.Source, r.Mqls, r.Customers, Amount(r.Revenue), Squares(r.RevenueSquares))).ToList(),
            rows.Select(r => new CohortCounts(r.Source, r.EverMqls, r.EverCustomers, Amount(r.EverRevenue), Squares(r.EverRevenueSquares))).ToList());
    }

    private static double Squares(object? value) => Convert.ToDouble(value ?? 0.0, System.Globalization.CultureInfo.InvariantCulture);

    private static decimal Amount(object? value) => value is null or DBNull ? 0m : decimal.Round(Convert.ToDecimal(value, System.Globalization.CultureInfo.InvariantCulture), 2);

    private sealed class CohortRevenueRow
    {
        public string Source { get; set; } = "";
        public int Mqls { get; set; }
        public int Customers { get; set; }
        public object? Revenue { get; set; }
        public object? RevenueSquares { get; set; }
        public int EverMqls { get; set; }
        public int EverCustomers { get; set; }
        public object? EverRevenue { get; set; }
        public object? EverRevenueSquares { get; set; }
    }

    public Task<int> CountHandOffBreachesAsync(CancellationToken cancel = default) => ReadAsync(reads => reads.ScalarAsync<int>(ReportSql.CountHandOffBreaches), cancel);

    /// <summary>Per UTC day since <paramref name="since"/>: emails sent, new MQLs and hand-off SLA breaches.</summary>
    public Task<IReadOnlyList<DayCount>> ReadTimelineAsync(DateTimeOffset since, CancellationToken cancel = default) => ReadAsync(reads => TimelineAsync(reads, since), cancel);

    private async Task<IReadOnlyList<DayCount>> TimelineAsync(Reads reads, DateTimeOffset since)
    {
        var rows = await reads.QueryAsync<DayRow>(Database.Dialect.Timeline, new { since });
        return rows.Select(r => new DayCount(r.Day, r.Series, (int)r.Count)).OrderBy(r => r.Day, StringComparer.Ordinal).ThenBy(r => r.Series, StringComparer.Ordinal).ToList();
    }

    /// <summary>A connection to read on and, when reads belong together, the transaction that keeps them in one snapshot.</summary>
    private readonly record struct Reads(DbConnection Connection, DbTransaction? Snapshot, CancellationToken Cancel)
    {
        public Task<IEnumerable<T>> QueryAsync<T>(string sql, object? param = null) =>
            Connection.QueryAsync<T>(new CommandDefinition(sql, param, Snapshot, cancellationToken: Cancel));

        public Task<T?> ScalarAsync<T>(string sql, object? param = null) =>
            Connection.ExecuteScalarAsync<T>(new CommandDefinition(sql, param, Snapshot, cancellationToken: Cancel));
    }

    public async Task<IReadOnlyList<LeadHistoryRow>> ReadHistoryRowsAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return (await connection.QueryAsync<LeadHistoryRow>(new CommandDefinition(
            ReportSql.History, new { leadId }, cancellationToken: cancel))).ToList();
    }

    public async Task<IReadOnlyList<LeadTransitionRow>> ReadTransitionsAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return (await connection.QueryAsync<LeadTransitionRow>(new CommandDefinition(
            ReportSql.Transitions, new { leadId }, cancellationToken: cancel))).ToList();
    }

    public async Task<IReadOnlyList<LeadStepRow>> ReadStepsAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return (await connection.QueryAsync<LeadStepRow>(new CommandDefinition(
            ReportSql.Steps, new { leadId }, cancellationToken: cancel))).ToList();
    }

    /// <summary>Per stage left: how many leads left it and how long they had stayed, on average and at most (days).</summary>
    public async Task<IReadOnlyList<TimeInStage>> ReadTimeInStageAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<TimeInStageRow>(new CommandDefinition(
            ReportSql.TimeInStage,
            cancellationToken: cancel));
        return rows.Select(r => new TimeInStage(Enum.Parse<LeadStage>(r.Stage), (int)r.Leads, Math.Round(Convert.ToDouble(r.AverageSeconds, System.Globalization.CultureInfo.InvariantCulture) / 86400, 2),
            Math.Round(Convert.ToDouble(r.LongestSeconds, System.Globalization.CultureInfo.InvariantCulture) / 86400, 2))).OrderBy(t => t.Stage).ToList();
    }

    /// <summary>Every stored event, in the order they happened: the input of `simulate`.</summary>
    public async Task<IReadOnlyList<NurtureMessage>> ReadAllEventsAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var payloads = await connection.QueryAsync<string>(new CommandDefinition(ReportSql.AllEvents, cancellationToken: cancel));
        return payloads.Select(EventJson.Parse).ToList();
    }

    /// <summary>One row per estimate (source '' for all sources together); a second run at the same instant changes nothing.</summary>
    public async Task RecordValueSnapshotAsync(DateTimeOffset at, IEnumerable<ValueEstimate> estimates, string definitionVersion, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        foreach (var v in estimates)
        {
            var exists = await connection.ExecuteScalarAsync<int>(new CommandDefinition(
                ReportSql.SnapshotExists, new { at, source = v.Source ?? "" }, transaction, cancellationToken: cancel));
            if (exists > 0) continue;
            await connection.ExecuteAsync(new CommandDefinition(ReportSql.InsertSnapshot, new
            {
                at, source = v.Source ?? "", v.Mqls, v.Customers, v.CloseRate, v.CloseRateLow, v.CloseRateHigh, v.AverageRevenue, v.Value, v.ValueLow, v.ValueHigh, v.Currency, definitionVersion,
            }, transaction, cancellationToken: cancel));
        }
        await transaction.CommitAsync(cancel);
    }

    private sealed class TimeInStageRow
    {
        public string Stage { get; set; } = "";
        public long Leads { get; set; }
        public object? AverageSeconds { get; set; }
        public object? LongestSeconds { get; set; }
    }

    private sealed class DayRow
    {
        public string Day { get; set; } = "";
        public string Series { get; set; } = "";
        public long Count { get; set; }
    }
}

/// <summary>The reports' SQL, the same on every provider (the SQL Server parse test reads it).</summary>
internal static class ReportSql
{
    public const string CohortsBySource = """
        SELECT source,
               SUM(CASE WHEN first_mql_at <= @cutoff THEN 1 ELSE 0 END) AS mqls,
               SUM(CASE WHEN first_mql_at <= @cutoff AND deals_won > 0 THEN 1 ELSE 0 END) AS customers,
               SUM(CASE WHEN first_mql_at <= @cutoff AND deals_won > 0 THEN revenue ELSE 0.0 END) AS revenue,
               SUM(CASE WHEN first_mql_at <= @cutoff AND deals_won > 0 THEN revenue * revenue ELSE 0.0 END) AS revenue_squares,
               COUNT(*) AS ever_mqls,
               SUM(CASE WHEN deals_won > 0 THEN 1 ELSE 0 END) AS ever_customers,
               SUM(CASE WHEN deals_won > 0 THEN revenue ELSE 0.0 END) AS ever_revenue,
               SUM(CASE WHEN deals_won > 0 THEN revenue * revenue ELSE 0.0 END) AS ever_revenue_squares
        FROM leads
        WHERE first_mql_at IS NOT NULL
        GROUP BY source
        ORDER BY source
        """;

    /// <summary>The funnel's stages after Lead, as a table of the stage and its pattern in a transition's skipped list.</summary>
    private static readonly string FunnelStagesTable = string.Join(" UNION ALL ", Funnel.Stages.Skip(1).Select(s => $"SELECT '{s}' AS stage, '%{s}%' AS pattern"));

    public static readonly string CountEntered = $"""
        SELECT to_stage AS stage, COUNT(DISTINCT lead_id) AS leads FROM stage_transitions
        WHERE to_stage IN ({string.Join(", ", Funnel.Stages.Skip(1).Select(s => $"'{s}'"))})
        GROUP BY to_stage
        """;

    // Skipped lists stage names joined by commas; no stage name is part of another. NOT EXISTS, not NOT IN: PostgreSQL
    // runs NOT IN over a subquery larger than work_mem as a nested loop (a million transitions: more than minutes).
    public static readonly string CountSkipped = $"""
        SELECT f.stage, COUNT(DISTINCT s.lead_id) AS leads
        FROM stage_transitions s
        JOIN ({FunnelStagesTable}) f ON s.skipped LIKE f.pattern
        WHERE s.skipped <> ''
          AND NOT EXISTS (SELECT 1 FROM stage_transitions e WHERE e.lead_id = s.lead_id AND e.to_stage = f.stage)
        GROUP BY f.stage
        """;

    public const string CountHandOffBreaches = "SELECT COUNT(*) FROM outbox WHERE type = 'HandOffSlaBreached'";

    public const string History = "SELECT type, occurred_at, received_at, outcome FROM lead_events WHERE lead_id = @leadId ORDER BY occurred_at, received_at";

    public const string Transitions = "SELECT from_stage, to_stage, at, reason, skipped, definition_version FROM stage_transitions WHERE lead_id = @leadId ORDER BY at, id";

    public const string Steps = "SELECT track, enrolment, step, template, due_at, status, sent_at, last_error, attempts FROM nurture_steps WHERE lead_id = @leadId ORDER BY enrolment, step";

    public const string TimeInStage = """
        SELECT from_stage AS stage, COUNT(*) AS leads, AVG(in_stage_seconds) AS average_seconds, MAX(in_stage_seconds) AS longest_seconds
        FROM stage_transitions WHERE in_stage_seconds IS NOT NULL GROUP BY from_stage
        """;

    public const string AllEvents = "SELECT payload FROM lead_events ORDER BY occurred_at";

    public const string SnapshotExists = "SELECT COUNT(*) FROM mql_value_snapshots WHERE at = @at AND source = @source";

    public const string InsertSnapshot = """
        INSERT INTO mql_value_snapshots (at, source, mqls, customers, close_rate, close_rate_low, close_rate_high, average_revenue, value, value_low, value_high, currency, definition_version)
        VALUES (@at, @source, @Mqls, @Customers, @CloseRate, @CloseRateLow, @CloseRateHigh, @AverageRevenue, @Value, @ValueLow, @ValueHigh, @Currency, @definitionVersion)
        """;
}
