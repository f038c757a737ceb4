using Dapper;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Messaging;

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

    [SkippableFact]
    public async Task Should_read_every_figure_of_the_report_in_one_snapshot_while_leads_are_stored()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var definition = DefaultDefinition.Create();
        var start = new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero);
        var events = Cli.SampleLeads.Generate(40, seed: 11, start, days: 30, definition).OrderBy(e => e.OccurredAt).ToList();
        foreach (var chunk in events.Chunk(100)) await database.ApplyAsync(definition, start.AddDays(30), [.. chunk]);
        var now = events[^1].OccurredAt;
        var store = new LeadStore(database);
        var before = await FunnelReport.ReadAsync(store, definition, now);

        // Another session holds the spend table, which the report reads second: the report's first read has begun, and
        // it waits there while new leads are captured and scheduled their emails, all committed before its next reads.
        await using var blocker = await database.OpenAsync();
        await using var hold = await blocker.BeginTransactionAsync();
        await blocker.ExecuteAsync("LOCK TABLE spend IN ACCESS EXCLUSIVE MODE", transaction: hold);
        var reading = FunnelReport.ReadAsync(store, definition, now);
        await Eventually.Until(
            async () => await database.CountAsync("SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = 'spend'::regclass"),
            waiting => waiting == 1, what: "the report to wait for the spend table");
        var arrived = Enumerable.Range(0, 5).SelectMany(i => new NurtureMessage[]
        {
            new LeadCaptured
            {
                EventId = Guid.NewGuid(), LeadId = $"late-{i}", OccurredAt = now, Email = $"late-{i}@softwarehaus.example", Industry = "software",
                CompanySize = 50, Country = "DE", Source = "webinar", Consent = true,
            },
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = $"late-{i}", OccurredAt = now, Activity = ActivityType.DemoRequested },
        }).ToArray();
        await database.ApplyAsync(definition, now, arrived);
        await hold.RollbackAsync();
        var during = await reading;
        var after = await FunnelReport.ReadAsync(store, definition, now);

        // What arrived changed what a report reads afterwards …
        Assert.Equal(before.LeadsPerStage.Values.Sum() + 5, after.LeadsPerStage.Values.Sum());
        Assert.NotEqual(before.Funnel, after.Funnel);
        Assert.NotEqual(before.Emails, after.Emails);
        // … and none of it reached the report that had begun: every figure is from the moment of its first read.
        Assert.Equal(before.LeadsPerStage, during.LeadsPerStage);
        Assert.Equal(before.Funnel, during.Funnel);
        Assert.Equal(before.Emails, during.Emails);
        Assert.Equal(before.Timeline, during.Timeline);
        Assert.Equal(before.MqlValueBySource, during.MqlValueBySource);
    }
}
