using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

public sealed record DayCount(string Day, string Series, int Count);

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
    /// <summary>Leads in each stage now, every stage present (zero when empty).</summary>
    public async Task<IReadOnlyDictionary<LeadStage, int>> ReadStageCountsAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<StageCount>(new CommandDefinition(StoreSql.CountByStage, cancellationToken: cancel));
        var counts = Enum.GetValues<LeadStage>().ToDictionary(s => s, _ => 0);
        foreach (var row in rows) counts[Enum.Parse<LeadStage>(row.Stage)] = row.Leads;
        return counts;
    }

    /// <summary>
    /// The funnel from the recorded transitions, counted in SQL: a stage is reached when a transition entered it (every lead
    /// entered Lead), skipped when a transition jumped over it and none ever entered it. Never from the furthest stage, which would invent the stages in between.
    /// </summary>
    public async Task<IReadOnlyList<FunnelStage>> ReadFunnelAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var now = await ReadStageCountsAsync(cancel);
        var reached = new Dictionary<LeadStage, int> { [LeadStage.Lead] = await connection.ExecuteScalarAsync<int>(new CommandDefinition(ReportSql.CountLeads, cancellationToken: cancel)) };
        var skipped = new Dictionary<LeadStage, int>();
        foreach (var stage in Funnel.Stages.Skip(1))
        {
            var args = new { stage = stage.ToString(), pattern = $"%{stage}%" };
            reached[stage] = await connection.ExecuteScalarAsync<int>(new CommandDefinition(ReportSql.CountEntered, args, cancellationToken: cancel));
            skipped[stage] = await connection.ExecuteScalarAsync<int>(new CommandDefinition(ReportSql.CountSkipped, args, cancellationToken: cancel));
        }
        return Funnel.From(reached, skipped, now);
    }

    /// <summary>The MQL cohorts old enough to count (first MQL before <paramref name="cutoff"/>), per source, counted in SQL, with the revenue's squares for its spread.</summary>
    public async Task<IReadOnlyList<CohortCounts>> ReadCohortsAsync(DateTimeOffset cutoff, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<CohortRevenueRow>(new CommandDefinition(ReportSql.CohortsBySource, new { cutoff }, cancellationToken: cancel));
        return rows.Select(r => new CohortCounts(r.Source, r.Mqls, r.Customers, Amount(r.Revenue), Convert.ToDouble(r.RevenueSquares ?? 0.0, System.Globalization.CultureInfo.InvariantCulture))).ToList();
    }

    private static decimal Amount(object? value) => value is null or DBNull ? 0m : decimal.Round(Convert.ToDecimal(value, System.Globalization.CultureInfo.InvariantCulture), 2);

    private sealed class CohortRevenueRow
    {
        public string Source { get; set; } = "";
        public int Mqls { get; set; }
        public int Customers { get; set; }
        public object? Revenue { get; set; }
        public object? RevenueSquares { get; set; }
    }

    public async Task<int> CountHandOffBreachesAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition(ReportSql.CountHandOffBreaches, cancellationToken: cancel));
    }

    /// <summary>Per UTC day since <paramref name="since"/>: emails sent, new MQLs and hand-off SLA breaches.</summary>
    public async Task<IReadOnlyList<DayCount>> ReadTimelineAsync(DateTimeOffset since, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<DayRow>(new CommandDefinition(Database.Dialect.Timeline, new { since }, cancellationToken: cancel));
        return rows.Select(r => new DayCount(r.Day, r.Series, (int)r.Count)).OrderBy(r => r.Day, StringComparer.Ordinal).ThenBy(r => r.Series, StringComparer.Ordinal).ToList();
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
        SELECT source, COUNT(*) AS mqls,
               SUM(CASE WHEN deals_won > 0 THEN 1 ELSE 0 END) AS customers,
               SUM(CASE WHEN deals_won > 0 THEN revenue ELSE 0.0 END) AS revenue,
               SUM(CASE WHEN deals_won > 0 THEN revenue * revenue ELSE 0.0 END) AS revenue_squares
        FROM leads
        WHERE first_mql_at IS NOT NULL AND first_mql_at <= @cutoff
        GROUP BY source
        ORDER BY source
        """;

    public const string CountLeads = "SELECT COUNT(*) FROM leads";

    public const string CountEntered = "SELECT COUNT(DISTINCT lead_id) FROM stage_transitions WHERE to_stage = @stage";

    // Skipped lists stage names joined by commas; no stage name is part of another. NOT EXISTS, not NOT IN: PostgreSQL
    // runs NOT IN over a subquery larger than work_mem as a nested loop (a million transitions: more than minutes).
    public const string CountSkipped = """
        SELECT COUNT(DISTINCT s.lead_id) FROM stage_transitions s
        WHERE s.skipped LIKE @pattern
          AND NOT EXISTS (SELECT 1 FROM stage_transitions e WHERE e.lead_id = s.lead_id AND e.to_stage = @stage)
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
