using System.Diagnostics;
using Dapper;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Messaging;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Email;

/// <summary>The send path against a real SMTP server on loopback that offers PIPELINING, breaks connections and goes away.</summary>
public class When_the_dispatch_sends_at_the_speed_of_the_mail_server
{
    private static Dictionary<string, string?> Settings(DatabaseProvider provider, int connections)
    {
        var settings = new Dictionary<string, string?> { ["Nurture:Email:Smtp:Connections"] = connections.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (provider == DatabaseProvider.PostgreSql)
        {
            settings["Nurture:Database:Provider"] = "PostgreSql";
            settings["ConnectionStrings:Nurture"] = TestDatabase.Create(DatabaseProvider.PostgreSql).ConnectionString;
            settings["Nurture:Email:UnsubscribeKey"] = "an-unsubscribe-key-for-the-dispatch-tests-0123456789";
        }
        return settings;
    }

    private static Task<MailRig> Rig(PipeliningSmtpServer smtp, DatabaseProvider provider, int connections) =>
        MailRig.StartAsync(smtpPort: smtp.Port, more: Settings(provider, connections));

    private static async Task CaptureAsync(MailRig rig, string prefix, int leads)
    {
        for (var i = 0; i < leads; i++) await rig.Apply(MailRig.Captured($"{prefix}-{i}", MailRig.Monday, $"{prefix}-{i}@softwarehaus.example"));
    }

    [SkippableTheory]
    [InlineData(DatabaseProvider.Sqlite)]
    [InlineData(DatabaseProvider.PostgreSql)]
    public async Task Should_record_each_accepted_email_before_its_connection_sends_the_next_and_resend_only_what_was_not_accepted(DatabaseProvider provider)
    {
        const int Leads = 8, Accepted = 3;
        await using var smtp = new PipeliningSmtpServer();
        await using var rig = await Rig(smtp, provider, connections: 1);
        await CaptureAsync(rig, "drop", Leads);
        long? sentWhenDropped = null;
        smtp.BeforeAccepting = async n =>
        {
            if (n != Accepted + 1) return true;
            // The server has the whole fourth message but has not answered: a crash here loses nothing recorded.
            sentWhenDropped = await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'sent'");
            return false;
        };

        await rig.Dispatch.DispatchAllDueAsync();

        Assert.Equal(Accepted, sentWhenDropped);
        Assert.Equal(Leads, smtp.Accepted.Count);
        Assert.All(smtp.Accepted.Values, n => Assert.Equal(1, n)); // no duplicates
        Assert.Equal(2, smtp.Connections); // one persistent connection, opened again once after the drop
        Assert.Equal(Leads, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'sent' AND attempts = 1"));
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND last_error IS NOT NULL"));
        var ids = (await ReadAsync(rig, "SELECT message_id FROM nurture_steps WHERE step = 0")).ToHashSet();
        Assert.True(ids.SetEquals(smtp.Accepted.Keys), "each accepted Message-ID is recorded on its step");
    }

    [SkippableTheory]
    [InlineData(DatabaseProvider.Sqlite)]
    [InlineData(DatabaseProvider.PostgreSql)]
    public async Task Should_send_the_backlog_within_seconds_of_the_server_answering_again_without_spending_attempts(DatabaseProvider provider)
    {
        const int Leads = 6;
        await using var smtp = new PipeliningSmtpServer(start: false); // down from the start
        // The worker's dispatch job, run every second by the test: Quartz reads the rig's frozen FakeTimeProvider, so it
        // would fire once at start, possibly before the leads exist.
        await using var rig = await Rig(smtp, provider, connections: 2);
        using var stop = new CancellationTokenSource();
        var job = RunJobEverySecondAsync(rig, stop.Token);
        await CaptureAsync(rig, "outage", Leads);

        // The job finds the server down with the first step it claims, puts it back and probes; it claims nothing more meanwhile.
        await Eventually.Until(() => rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'pending' AND last_error LIKE 'SMTP 127.0.0.1:%'"),
            n => n > 0, TimeSpan.FromSeconds(20), "the job to find the server down and put its steps back");
        await Task.Delay(TimeSpan.FromSeconds(4)); // the outage goes on: probes back off, nothing is parked
        Assert.Equal(Leads, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'pending' AND attempts = 0"));
        smtp.Start();
        var back = Stopwatch.StartNew();

        await Eventually.Until(() => Task.FromResult(smtp.AcceptedCount), n => n == Leads, TimeSpan.FromSeconds(30), "the backlog to go out");
        back.Stop();
        await Eventually.Until(() => rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'sent'"), n => n == Leads, TimeSpan.FromSeconds(10), "the sends recorded");

        Assert.True(back.Elapsed < TimeSpan.FromSeconds(10), $"sending resumed {back.Elapsed.TotalSeconds:F1} s after the server answered");
        Assert.Equal(Leads, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND attempts = 1")); // the outage cost no attempt
        Assert.All(smtp.Accepted.Values, n => Assert.Equal(1, n));
        await stop.CancelAsync();
        await job;
    }

    [SkippableTheory]
    [InlineData(DatabaseProvider.Sqlite)]
    [InlineData(DatabaseProvider.PostgreSql)]
    public async Task Should_never_hold_more_accepted_but_unrecorded_emails_than_connections_while_their_records_are_written_together(DatabaseProvider provider)
    {
        const int Leads = 24, Connections = 4;
        await using var smtp = new PipeliningSmtpServer();
        await using var rig = await Rig(smtp, provider, Connections);
        await CaptureAsync(rig, "group", Leads);
        var lags = new System.Collections.Concurrent.ConcurrentBag<(int Accepted, long Recorded)>();
        smtp.BeforeAccepting = async n =>
        {
            // n - 1 emails accepted so far (or about to be). This connection's last one is recorded, or it would not be
            // sending; each of the others may have one not yet recorded, no more.
            lags.Add((n - 1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'sent'")));
            return true;
        };

        await rig.Dispatch.DispatchAllDueAsync();

        Assert.Equal(Leads, smtp.AcceptedCount);
        Assert.All(smtp.Accepted.Values, n => Assert.Equal(1, n));
        Assert.Equal(Leads, lags.Count);
        Assert.All(lags, l => Assert.True(l.Accepted - l.Recorded <= Connections - 1, $"{l.Accepted} accepted, {l.Recorded} recorded"));
        Assert.Equal(Leads, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'sent'"));
        Assert.Equal(Leads, await rig.Database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailSent'"));
    }

    [SkippableFact]
    public async Task Should_read_each_claimed_steps_recent_sends_by_its_lead_even_in_a_plan_made_before_anything_was_sent()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await using var connection = await database.OpenAsync();
        // Statistics from before the first send, then 5,000 sends: the situation of a worker whose plan was made early
        // (autovacuum, which could analyze the table meanwhile, is off for it).
        await connection.ExecuteAsync("""
            ALTER TABLE nurture_steps SET (autovacuum_enabled = off);
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts)
            SELECT 'lead-' || g, 'software', 1, 0, 'software-welcome', TIMESTAMPTZ '2026-03-02 08:00Z', 'pending', 0 FROM generate_series(1, 5000) AS g;
            ANALYZE nurture_steps;
            INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts, sent_at, message_id)
            SELECT 'lead-' || g, 'software', 1, 1, 'software-next', TIMESTAMPTZ '2026-03-02 08:00Z', 'sent', 1, TIMESTAMPTZ '2026-03-02 07:00Z', '<' || g || '@nurture>'
            FROM generate_series(1, 5000) AS g;
            SET plan_cache_mode = force_generic_plan;
            """);
        var sql = database.Dialect.DueStepContext.Replace("@since", "$1", StringComparison.Ordinal).Replace("@ids", "$2", StringComparison.Ordinal);
        await connection.ExecuteAsync($"PREPARE context (timestamptz, bigint[]) AS {sql}");
        var plan = string.Join("\n", await connection.QueryAsync<string>("EXPLAIN EXECUTE context (TIMESTAMPTZ '2026-03-01 08:00Z', ARRAY[1, 2, 3]::bigint[])"));
        await connection.ExecuteAsync("DEALLOCATE context; RESET plan_cache_mode");

        Assert.Contains("Index Cond: ((lead_id = s.lead_id)", plan, StringComparison.Ordinal);
        Assert.DoesNotContain("Materialize", plan, StringComparison.Ordinal);
    }

    private static async Task RunJobEverySecondAsync(MailRig rig, CancellationToken stop)
    {
        var job = new Nurture.Worker.Scheduling.DispatchNurtureEmails(rig.Dispatch, Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Nurture.Worker.Storage.OutboxSignal>(rig.App.Services));
        while (!stop.IsCancellationRequested)
        {
            await job.Execute(null!, stop);
            await Task.Delay(TimeSpan.FromSeconds(1), stop).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    [SkippableFact]
    public async Task Should_claim_from_the_due_index_without_scanning_or_sorting_the_backlog_on_PostgreSQL()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await using (var connection = await database.OpenAsync())
        {
            // 300,000 pending steps (a third due, the rest later), 100,000 sent and a few claims whose lease ran out.
            await connection.ExecuteAsync("""
                INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts, claimed_by, claim_until, sent_at)
                SELECT 'lead-' || g, 'software', 1, 0, 'software-welcome',
                       TIMESTAMPTZ '2026-03-02 08:00Z' + (g % 3000 - 1000) * INTERVAL '1 minute',
                       CASE WHEN g % 4 = 0 THEN 'sent' WHEN g % 1000 = 1 THEN 'claimed' ELSE 'pending' END, CASE WHEN g % 1000 = 1 THEN 1 ELSE 0 END,
                       CASE WHEN g % 1000 = 1 THEN 'gone' END, CASE WHEN g % 1000 = 1 THEN TIMESTAMPTZ '2026-03-02 07:00Z' END,
                       CASE WHEN g % 4 = 0 THEN TIMESTAMPTZ '2026-03-01 08:00Z' END
                FROM generate_series(1, 400000) AS g;
                ANALYZE nurture_steps;
                """, commandTimeout: 300);
            var plan = string.Join("\n", await connection.QueryAsync<string>("EXPLAIN " + database.Dialect.ClaimDueSteps,
                new { Claimer = "w", Now = new DateTimeOffset(2026, 3, 2, 8, 0, 0, TimeSpan.Zero), Until = new DateTimeOffset(2026, 3, 2, 8, 5, 0, TimeSpan.Zero), Max = 50 }));

            Assert.Contains("Index Scan using ix_nurture_steps_due", plan, StringComparison.Ordinal);
            Assert.Contains("ix_nurture_steps_lease", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Seq Scan on nurture_steps", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Sort", plan, StringComparison.Ordinal);
        }
        var store = new LeadStore(database);
        var claimed = await store.ClaimDueAsync("w", new DateTimeOffset(2026, 3, 2, 8, 0, 0, TimeSpan.Zero), TimeSpan.FromMinutes(5), 50);
        Assert.Equal(50, claimed.Count);
        Assert.Contains(claimed, s => s.Attempts == 2); // lapsed claims come back first
        Assert.True(await store.RecordSentAsync(claimed[0], "w", "<one@nurture>", claimed[0].DueAt, null), "recorded in one round trip");
        Assert.False(await store.RecordSentAsync(claimed[1], "not-the-claimer", "<two@nurture>", claimed[1].DueAt, null), "another worker's claim");
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailSent'"));
        Assert.All(claimed.Where(s => s.Attempts == 1), s => Assert.True(s.DueAt <= new DateTimeOffset(2026, 3, 2, 8, 0, 0, TimeSpan.Zero)));
    }

    [SkippableFact]
    public async Task Should_have_PostgreSQL_prepare_what_the_worker_runs_again_and_again_unless_the_connection_string_says_otherwise()
    {
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var store = new LeadStore(database);
        var at = new DateTimeOffset(2026, 3, 2, 8, 0, 0, TimeSpan.Zero);
        // Every send records itself with the same statements; the third time they run prepared, not planned again.
        Assert.Equal(0, await PreparedRecordsAsync(database));
        // Sends with and without a next step alike: one prepared statement serves both.
        for (var i = 0; i < 4; i++)
        {
            await store.RecordSentAsync(new ClaimedStep(i + 1, $"lead-{i}", "software", 1, 0, "software-welcome", at, 1), "w", $"<{i}@nurture>", at,
                i % 2 == 0 ? null : new Nurture.Core.StepDue("software", 1, "software-next", at.AddDays(3)));
        }
        Assert.Equal(1, await PreparedRecordsAsync(database));

        // Another connection string, so another pool: connections that never prepared anything.
        var off = new Database(DatabaseProvider.PostgreSql, new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString) { MaxAutoPrepare = 0 }.ToString());
        for (var i = 0; i < 3; i++) await new LeadStore(off).RecordSentAsync(new ClaimedStep(i + 1, $"lead-{i}", "software", 1, 0, "software-welcome", at, 1), "w", $"<{i}@nurture>", at, null);
        Assert.Equal(0, await PreparedRecordsAsync(off));

        static async Task<long> PreparedRecordsAsync(Database database)
        {
            // One pooled connection: the one the store used (pools keep a connection per database and string).
            await using var connection = await database.OpenAsync();
            return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE '%UPDATE nurture_steps SET status = ''sent''%'");
        }
    }

    private static async Task<List<string>> ReadAsync(MailRig rig, string sql)
    {
        await using var connection = await rig.Database.OpenAsync();
        return [.. await connection.QueryAsync<string>(sql)];
    }
}
