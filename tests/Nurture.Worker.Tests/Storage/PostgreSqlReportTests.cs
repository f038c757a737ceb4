using Dapper;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Storage;

/// <summary>The funnel the metrics read every Nurture:Metrics:RefreshSeconds, on a real PostgreSQL server with a large history.</summary>
public class When_the_metrics_read_the_funnel_on_PostgreSQL
{
    [SkippableFact]
    public async Task Should_count_breaches_the_timeline_and_skipped_stages_without_scanning_the_outbox_or_every_sent_step_or_looping()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await using (var connection = await database.OpenAsync())
        {
            // 200,000 outbox messages of which 3 are breaches (2 in the last days), 100,000 sent steps of which 40 recent,
            // 50,000 transitions of which 10 recent entries into MQL.
            await connection.ExecuteAsync("""
                INSERT INTO outbox (message_id, type, payload, created_at, published_at)
                SELECT gen_random_uuid(), CASE WHEN g IN (7, 70000, 199999) THEN 'HandOffSlaBreached' ELSE 'LeadScored' END, '{}',
                       CASE WHEN g = 7 THEN TIMESTAMPTZ '2026-01-01 08:00Z' ELSE TIMESTAMPTZ '2026-03-01 08:00Z' END, TIMESTAMPTZ '2026-03-01 08:00Z'
                FROM generate_series(1, 200000) AS g;
                INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts, sent_at)
                SELECT 'lead-' || g, 'software', 1, 0, 'software-welcome', TIMESTAMPTZ '2025-06-01 08:00Z', 'sent', 1,
                       CASE WHEN g <= 40 THEN TIMESTAMPTZ '2026-03-01 09:00Z' ELSE TIMESTAMPTZ '2025-06-01 08:00Z' END
                FROM generate_series(1, 100000) AS g;
                INSERT INTO stage_transitions (lead_id, event_id, from_stage, to_stage, at, reason, skipped, definition_version, source)
                SELECT 'lead-' || g, gen_random_uuid(), 'Lead', CASE WHEN g <= 30 THEN 'Mql' ELSE 'Disqualified' END,
                       CASE WHEN g <= 10 THEN TIMESTAMPTZ '2026-03-01 10:00Z' ELSE TIMESTAMPTZ '2025-06-01 08:00Z' END, 'test', '', 'v1', 'seo'
                FROM generate_series(1, 50000) AS g;
                ANALYZE outbox; ANALYZE nurture_steps; ANALYZE stage_transitions;
                """, commandTimeout: 300);
            var since = new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero);
            var plans = string.Join("\n", (await connection.QueryAsync<string>("EXPLAIN " + ReportSql.CountHandOffBreaches))
                .Concat(await connection.QueryAsync<string>("EXPLAIN " + database.Dialect.Timeline, new { since })));

            Assert.DoesNotContain("Seq Scan on outbox", plans, StringComparison.Ordinal);
            Assert.DoesNotContain("Seq Scan on nurture_steps", plans, StringComparison.Ordinal);
            Assert.DoesNotContain("Seq Scan on stage_transitions", plans, StringComparison.Ordinal);
            Assert.Contains("ix_outbox_handoff_breaches", plans, StringComparison.Ordinal);

            // The leads that skipped a stage without ever entering it: an anti-join. NOT IN over a subquery larger than
            // work_mem ran as a nested loop here (a million transitions: more than minutes, every refresh).
            var skipped = string.Join("\n", await connection.QueryAsync<string>("EXPLAIN " + ReportSql.CountSkipped));
            Assert.Contains("Anti Join", skipped, StringComparison.Ordinal);
            Assert.DoesNotContain("SubPlan", skipped, StringComparison.Ordinal);
        }
        var store = new LeadStore(database);

        Assert.Equal(3, await store.CountHandOffBreachesAsync());
        var timeline = await store.ReadTimelineAsync(new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(
            [new DayCount("2026-03-01", "emailsSent", 40), new DayCount("2026-03-01", "handOffBreaches", 2), new DayCount("2026-03-01", "mqls", 10)],
            timeline);
    }
}
