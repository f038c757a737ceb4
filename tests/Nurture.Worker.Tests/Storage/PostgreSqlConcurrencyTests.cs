using System.Collections.Concurrent;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Storage;

/// <summary>Several workers on one real PostgreSQL server: claims, version conflicts and duplicates under contention.</summary>
public class When_workers_race_on_PostgreSQL
{
    private static readonly DateTimeOffset Now = new(2026, 3, 2, 9, 30, 0, TimeSpan.Zero);
    private readonly Definition _definition = DefaultDefinition.Create();

    private static LeadActivityRecorded Did(string leadId, ActivityType activity, int n) =>
        new() { EventId = Lifecycle.DerivedId(Guid.Empty, $"race/{leadId}/{n}"), LeadId = leadId, OccurredAt = Now.AddMinutes(n), Activity = activity };

    [SkippableFact]
    public async Task Should_publish_each_outbox_message_once_across_4_relays()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("""
                INSERT INTO outbox (message_id, type, payload, created_at)
                SELECT gen_random_uuid(), 'LeadScored', '{}', @at FROM generate_series(1, 3000)
                """, new { at = Now.UtcDateTime });
        }
        var store = new LeadStore(database);
        var published = new ConcurrentBag<Guid>();

        await Task.WhenAll(Enumerable.Range(1, 4).Select(_ => Task.Run(async () =>
        {
            while (await store.PublishOutboxAsync(50, async batch =>
            {
                await Task.Delay(5); // the broker's confirms, while the rows stay locked
                foreach (var m in batch) published.Add(m.MessageId);
            }, Now) > 0)
            {
            }
        })));

        Assert.Equal(3000, published.Count);
        Assert.Equal(3000, published.Distinct().Count());
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"));
    }

    [SkippableFact]
    public async Task Should_claim_each_of_10000_due_steps_exactly_once_across_8_claimers()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("""
                INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
                SELECT 'lead-' || g, 'software', 1, 0, 'software-welcome', @due, 'pending', 0 FROM generate_series(1, 10000) AS g
                """, new { due = Now.AddMinutes(-1).UtcDateTime });
        }
        var store = new LeadStore(database);
        var claimed = new ConcurrentBag<long>();

        await Task.WhenAll(Enumerable.Range(1, 8).Select(worker => Task.Run(async () =>
        {
            while (await store.ClaimDueAsync($"worker-{worker}", Now, TimeSpan.FromMinutes(10), 100) is { Count: > 0 } batch)
            {
                foreach (var step in batch) claimed.Add(step.Id);
            }
        })));

        Assert.Equal(10_000, claimed.Count);
        Assert.Equal(10_000, claimed.Distinct().Count());
        Assert.Equal(10_000, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'claimed' AND attempts = 1"));
    }

    [SkippableFact]
    public async Task Should_land_two_writers_on_one_lead_the_second_retrying_after_the_version_conflict()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var setup = new LeadStore(database);
        await setup.ApplyWithRetryAsync([Did("lead-1", ActivityType.WhitepaperDownloaded, 0)], _definition, Now);

        // Writer A reads the lead, then waits while writer B reads, writes and commits; A's write then meets a newer version.
        var bHasCommitted = new TaskCompletionSource();
        var aHasRead = new TaskCompletionSource();
        var aReads = 0;
        var writerA = new LeadStore(database)
        {
            AfterLeadRead = async _ =>
            {
                if (Interlocked.Increment(ref aReads) > 1) return;
                aHasRead.SetResult();
                await bHasCommitted.Task;
            },
        };
        var writerB = new LeadStore(database);

        var a = Task.Run(() => writerA.ApplyWithRetryAsync([Did("lead-1", ActivityType.WebinarRegistered, 1)], _definition, Now));
        await aHasRead.Task;
        await writerB.ApplyAsync([Did("lead-1", ActivityType.PricingPageViewed, 2)], _definition, Now);
        bHasCommitted.SetResult();
        await a;

        var lead = (await setup.LoadLeadAsync("lead-1"))!;
        Assert.Equal(2, aReads); // read, conflict, read again
        Assert.Equal(3, lead.Version);
        Assert.Equal([ActivityType.WhitepaperDownloaded, ActivityType.WebinarRegistered, ActivityType.PricingPageViewed], lead.Lead.Activities.Keys.Order());
    }

    [SkippableFact]
    public async Task Should_apply_the_same_event_delivered_to_two_workers_at_once_only_once()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var events = Enumerable.Range(0, 50).Select(n => Did("lead-2", ActivityType.TutorialViewed, n)).ToList();

        var results = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            var store = new LeadStore(database);
            var applied = new List<AppliedEvent>();
            foreach (var e in events) applied.AddRange(await store.ApplyWithRetryAsync([e], _definition, Now));
            return applied;
        })));

        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(50, all.Count(a => !a.Duplicate));
        Assert.Equal(50, all.Count(a => a.Duplicate));
        var lead = (await new LeadStore(database).LoadLeadAsync("lead-2"))!;
        Assert.Equal(50, lead.Lead.Activities[ActivityType.TutorialViewed]);
        Assert.Equal(50, lead.Version);
        Assert.Equal(50, await database.CountAsync("SELECT COUNT(*) FROM lead_events"));
    }
}
