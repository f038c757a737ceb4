using System.Collections.Concurrent;
using Dapper;
using MassTransit;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Leads;
using Nurture.Worker.Storage;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Worker.Tests.Messaging;

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
            var relay = $"relay-{Guid.NewGuid():N}";
            while (await store.ClaimOutboxAsync(relay, 50, Now, TimeSpan.FromMinutes(2)) is { Count: > 0 } batch)
            {
                await Task.Delay(5); // the broker's confirms, with no transaction open
                foreach (var m in batch) published.Add(m.MessageId);
                Assert.Equal(batch.Count, (await store.MarkPublishedAsync(relay, batch.Select(m => m.MessageId).ToList(), Now)).Count);
            }
        })));

        Assert.Equal(3000, published.Count);
        Assert.Equal(3000, published.Distinct().Count());
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"));
    }

    [SkippableFact]
    public async Task Should_publish_a_message_whose_transaction_committed_after_the_relay_had_moved_past_its_id()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var store = new LeadStore(database);
        var seen = new ConcurrentDictionary<Guid, bool>();
        var bus = MassTransit.Bus.Factory.CreateUsingInMemory(bus => bus.ReceiveEndpoint("relay-floor", e =>
            e.Handler<LeadScored>(context => Task.FromResult(seen[context.Message.EventId] = true))));
        await bus.StartAsync();
        try
        {
            var relay = new Nurture.Worker.Messaging.OutboxRelay(store, bus, new Nurture.Worker.Messaging.BusSettings(), TimeProvider.System,
                new Nurture.Worker.Metrics.NurtureMetrics(new Microsoft.Extensions.DependencyInjection.ServiceCollection().AddMetrics().BuildServiceProvider()
                    .GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), TimeProvider.System),
                new OutboxSignal(), Microsoft.Extensions.Logging.Abstractions.NullLogger<Nurture.Worker.Messaging.OutboxRelay>.Instance);

            // A slow writer takes the lowest id and keeps its transaction open while later rows commit and go out for
            // longer than the relay's floor trails behind what it claimed.
            var slow = Scored("slow");
            await using var slowConnection = await database.OpenAsync();
            await using var slowWrite = await slowConnection.BeginTransactionAsync();
            await InsertAsync(slowConnection, slowWrite, slow);
            var later = new List<LeadScored>();
            var passing = System.Diagnostics.Stopwatch.StartNew();
            while (passing.Elapsed < TimeSpan.FromSeconds(2))
            {
                var next = Scored($"later-{later.Count}");
                later.Add(next);
                await using (var connection = await database.OpenAsync()) await InsertAsync(connection, null, next);
                await relay.PublishPendingAsync(CancellationToken.None);
                await Task.Delay(20);
            }
            await slowWrite.CommitAsync();

            await Eventually.Until(async () =>
            {
                await relay.PublishPendingAsync(CancellationToken.None);
                return seen.ContainsKey(slow.EventId) && later.All(m => seen.ContainsKey(m.EventId));
            }, done => done, TimeSpan.FromSeconds(60), "the slow writer's message and every later one published");
            Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"));
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    private static LeadScored Scored(string leadId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = Now, Score = 10, Behaviour = 10, Fit = 0, DefinitionVersion = "test", Explanation = [],
    };

    private static Task<int> InsertAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? transaction, LeadScored message) =>
        connection.ExecuteAsync("INSERT INTO outbox (message_id, type, payload, created_at) VALUES (@id, 'LeadScored', @payload, @at)",
            new { id = message.EventId, payload = EventJson.Write(message), at = Now.UtcDateTime }, transaction);

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
        await database.ApplyAsync(_definition, Now, Did("lead-1", ActivityType.WhitepaperDownloaded, 0));

        // Both writers read the lead at version 1 while the test holds its row; released, one writes first and the other
        // meets a newer version, decides again and lands on top.
        await using var holder = await database.OpenAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await holder.ExecuteAsync("SELECT version FROM leads WHERE lead_id = 'lead-1' FOR UPDATE", transaction: hold);
        var a = Task.Run(() => database.ApplyAsync(_definition, Now, Did("lead-1", ActivityType.WebinarRegistered, 1)));
        var b = Task.Run(() => database.ApplyAsync(_definition, Now, Did("lead-1", ActivityType.PricingPageViewed, 2)));
        await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"),
            n => n == 2, what: "both writers to wait on the lead's row");
        await hold.CommitAsync();
        await Task.WhenAll(a, b);

        var lead = (await new LeadStore(database).LoadLeadAsync("lead-1"))!;
        Assert.Equal(3, lead.Version);
        Assert.Equal([ActivityType.WhitepaperDownloaded, ActivityType.WebinarRegistered, ActivityType.PricingPageViewed], lead.Lead.Activities.Keys.Order());
    }

    [SkippableFact]
    public async Task Should_refuse_to_overwrite_a_lead_another_writer_changed_since_the_batch_read_it()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await database.ApplyAsync(_definition, Now, Did("lead-v", ActivityType.WhitepaperDownloaded, 0), Did("lead-w", ActivityType.WhitepaperDownloaded, 0));
        await using var batch = await new LeadRecords(database).BeginAsync(Now, CancellationToken.None);
        var (leads, _, _) = await batch.LoadAsync(["lead-v", "lead-w"], []);

        // A writer that does not wait for the batch's locks changes one of the two leads in between.
        await using (var other = await database.OpenAsync()) await other.ExecuteAsync("UPDATE leads SET version = version + 1 WHERE lead_id = 'lead-w'");
        var changes = new LeadChanges();
        foreach (var (id, stored) in leads) changes.Leads[id] = new LeadWrite(stored.Lead, 42, 0, stored.Version);

        var conflict = await Assert.ThrowsAsync<LeadVersionConflictException>(() => batch.SaveAsync(changes));
        Assert.Equal("1 of 2 leads changed since they were read.", conflict.Message);
    }

    [SkippableFact]
    public async Task Should_apply_the_same_event_delivered_to_two_workers_at_once_only_once()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var events = Enumerable.Range(0, 50).Select(n => Did("lead-2", ActivityType.TutorialViewed, n)).ToList();

        var results = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            var applied = new List<AppliedEvent>();
            foreach (var e in events) applied.AddRange(await database.ApplyAsync(_definition, Now, e));
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

    [SkippableFact]
    public async Task Should_record_the_rest_of_a_group_of_sends_when_the_database_refuses_one_of_them()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var store = new LeadStore(database);
        await database.ApplyAsync(_definition, Now, [.. Enumerable.Range(1, 6).Select(n => (NurtureMessage)new LeadCaptured
        {
            EventId = Lifecycle.DerivedId(Guid.Empty, $"group/{n}"), LeadId = $"group-{n}", OccurredAt = Now, Email = $"group-{n}@softwarehaus.example",
            FirstName = "Anna", Role = "Head of IT", Industry = "software", CompanySize = 50, Country = "DE", Language = "de", Source = "webinar", Consent = true,
        })]);
        var steps = (await store.ClaimDueAsync("w", Now.AddDays(30), TimeSpan.FromMinutes(5), 10)).OrderBy(s => s.Id).ToList();
        Assert.Equal(6, steps.Count);
        var refused = steps[4];
        await using var refusing = await database.OpenAsync();
        // The database refuses one send's record, as it might refuse a row for reasons of its own, and counts its refusals
        // in a sequence (which no rollback takes back).
        await refusing.ExecuteAsync($"""
            CREATE SEQUENCE refusals;
            CREATE FUNCTION refuse_step() RETURNS trigger AS $$
            BEGIN
                IF NEW.id = {refused.Id} AND NEW.status = 'sent' THEN
                    PERFORM nextval('refusals');
                    RAISE EXCEPTION 'step {refused.Id} refused';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_step BEFORE UPDATE ON nurture_steps FOR EACH ROW EXECUTE FUNCTION refuse_step();
            """);
        // Both writers wait on the first two steps, held by another transaction, so the next four sends queue as one group.
        await using var holding = await refusing.BeginTransactionAsync();
        await refusing.ExecuteAsync("SELECT id FROM nurture_steps WHERE id = ANY(@ids) FOR UPDATE", new { ids = new[] { steps[0].Id, steps[1].Id } }, holding);
        var recorder = new Nurture.Worker.Email.SendRecorder(store, "w");
        Task<bool> Record(ClaimedStep step) => recorder.RecordAsync(new SentEmail(step, $"<{step.Id}@nurture>", Now, null));
        var first = steps.Take(2).Select(Record).ToList();
        await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"),
            waiting => waiting == 2, what: "both writers waiting on the held steps");
        var group = steps.Skip(2).Select(Record).ToList();
        await holding.RollbackAsync();

        var answers = await Task.WhenAll(first.Concat(group).Select(async t => { try { return (bool?)await t; } catch (Npgsql.PostgresException) { return null; } }));

        Assert.Equal([true, true, true, true, null, true], answers);
        // Refused twice: once in the group of four, written together, and once alone.
        Assert.Equal(2, await database.CountAsync("SELECT last_value FROM refusals"));
        Assert.Equal(5, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'sent' AND message_id = '<' || id || '@nurture>'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE id = @Id AND status = 'claimed'", new { refused.Id }));
        Assert.Equal(5, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailSent'"));
    }
}
