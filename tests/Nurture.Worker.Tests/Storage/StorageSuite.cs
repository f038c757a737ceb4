using Dapper;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Leads;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Storage;

/// <summary>One storage suite, run against every provider by the classes at the bottom of this file.</summary>
public abstract class StorageSuite(DatabaseProvider provider)
{
    protected static readonly DateTimeOffset Now = new(2026, 3, 2, 9, 30, 0, TimeSpan.Zero); // a Monday, inside the send window
    private readonly Definition _definition = DefaultDefinition.Create();
    private int _ids;

    protected DatabaseProvider Provider { get; } = provider;

    protected Guid Id() => Lifecycle.DerivedId(Guid.Empty, $"{GetType().Name}/{++_ids}");

    protected LeadCaptured Captured(string leadId, DateTimeOffset? at = null) => new()
    {
        EventId = Id(), LeadId = leadId, OccurredAt = at ?? Now, Email = $"{leadId}@softwarehaus.example", FirstName = "Anna",
        LastName = "Schmidt", Company = "Softwarehaus GmbH", Role = "Head of IT", Industry = "software", CompanySize = 50,
        Country = "DE", TimeZone = "Europe/Berlin", Language = "de", Source = "webinar", Consent = true,
    };

    protected LeadActivityRecorded Did(string leadId, ActivityType activity, DateTimeOffset? at = null) =>
        new() { EventId = Id(), LeadId = leadId, OccurredAt = at ?? Now, Activity = activity };

    protected static LeadStore Store(Database database) => new(database);

    protected Task<IReadOnlyList<AppliedEvent>> Apply(LeadStore store, params NurtureMessage[] events) =>
        store.Database.ApplyAsync(_definition, Now, events);

    [SkippableFact]
    public async Task Should_store_a_decision_with_its_transitions_outbox_and_first_step_together()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);

        var applied = await Apply(store, Captured("lead-1"), Did("lead-1", ActivityType.TrialStarted), Did("lead-1", ActivityType.DemoRequested));

        Assert.All(applied, a => Assert.False(a.Duplicate));
        var lead = (await store.LoadLeadAsync("lead-1"))!;
        Assert.Equal(LeadStage.Mql, lead.Lead.Stage);
        Assert.Equal(1, lead.Version); // the lead row is written once per batch, whatever the number of its events
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM stage_transitions WHERE lead_id = 'lead-1' AND to_stage = 'Mql'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'lead-1' AND status = 'pending' AND template = 'software-welcome'"));
        var outbox = await store.ReadOutboxAsync(100);
        Assert.Contains(outbox, m => m.Type == nameof(LeadHandedToSales));
        Assert.Contains(outbox, m => m.Type == nameof(NurtureEmailScheduled));
        Assert.Contains(outbox, m => m.Type == nameof(LeadStageChanged) && EventJson.Parse(m.Payload) is LeadStageChanged { To: LeadStage.Mql });
        Assert.Equal(3, (await store.HistoryAsync("lead-1")).Count);
        // Three score changes in one batch say one thing: the score at the end of it.
        var scored = Assert.Single(outbox, m => m.Type == nameof(LeadScored));
        Assert.Equal(applied[^1].Decision!.Score.Total, ((LeadScored)EventJson.Parse(scored.Payload)).Score);
    }

    [SkippableFact]
    public async Task Should_publish_each_leads_last_score_of_a_batch_in_the_place_of_its_last_change()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);

        var applied = await Apply(store, Captured("mix-1"), Captured("mix-2"), Did("mix-1", ActivityType.WebinarAttended),
            Did("mix-2", ActivityType.WhitepaperDownloaded), Did("mix-1", ActivityType.PricingPageViewed), Captured("mix-3"));

        var scores = (await store.ReadOutboxAsync(100)).Where(m => m.Type == nameof(LeadScored)).Select(m => (LeadScored)EventJson.Parse(m.Payload)).ToList();
        // In the order of each lead's last change: mix-2's last came before mix-1's, and mix-3 came last.
        Assert.Equal(["mix-2", "mix-1", "mix-3"], scores.Select(s => s.LeadId));
        Assert.Equal(applied[3].Decision!.Score.Total, scores[0].Score);
        Assert.Equal(applied[4].Decision!.Score.Total, scores[1].Score);
        Assert.Equal(applied[5].Decision!.Score.Total, scores[2].Score);
    }

    [SkippableFact]
    public async Task Should_keep_each_click_on_an_email_step_as_a_row_and_fill_earlier_clicks_from_their_events()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        LeadActivityRecorded Clicked(string leadId, Dictionary<string, string> properties, ActivityType activity = ActivityType.EmailClicked) =>
            Did(leadId, activity) with { Properties = properties };
        var person = Clicked("click-1", new() { ["track"] = "software", ["step"] = "0", ["link"] = "1" });

        await Apply(store, Captured("click-1"), Captured("click-2"), person,
            Clicked("click-1", new() { ["track"] = "software", ["step"] = "1", ["link"] = "0" }),
            Clicked("click-2", new() { ["track"] = "software", ["step"] = "0", ["link"] = "0", [Clicks.Machine] = "true" }),
            Clicked("click-2", new() { ["track"] = "software", ["step"] = "02" }), // not a plain number: names no step
            Clicked("click-2", new() { ["step"] = "0" }), // no track
            Clicked("click-2", new() { ["track"] = "software", ["step"] = "0" }, ActivityType.PricingPageViewed),
            // Free text where the track goes, and a step the track does not have: kept in the history, not as clicks.
            Clicked("click-2", new() { ["track"] = "anna@softwarehaus.example", ["step"] = "0" }),
            Clicked("click-2", new() { ["track"] = "software", ["step"] = "99" }));
        await Apply(store, person); // delivered again

        const string Rows = "SELECT lead_id, track, step, by_machine FROM email_clicks ORDER BY lead_id, step, by_machine";
        var rows = await Read(database, Rows);
        Assert.Equal(["click-1|software|0|0", "click-1|software|1|0", "click-2|software|0|1"], rows);

        // Migrations 0017 and 0018 give the clicks stored before the table the same rows, event id and time included:
        // 0017 takes every plainly named step, 0018 keeps those of the steps Nurture scheduled (here step 0 for both
        // leads at their capture, and step 1 for click-1, whose email it clicked).
        var all = await Read(database, "SELECT * FROM email_clicks ORDER BY event_id");
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("DELETE FROM email_clicks");
            await connection.ExecuteAsync(
                "INSERT INTO nurture_steps (lead_id, track, enrolment, step, template, due_at, status, attempts) VALUES ('click-1', 'software', 1, 1, 'software-1', @Now, 'pending', 0)",
                new { Now });
            await RunScriptAsync(connection, "0017_email_clicks_from_events.sql");
            Assert.Equal(5, (await Read(database, Rows)).Count); // 0017 took the free text and step 99 too
            await RunScriptAsync(connection, "0018_email_clicks_named_tracks_only.sql");
        }
        Assert.Equal(all, await Read(database, "SELECT * FROM email_clicks ORDER BY event_id"));
    }

    private async Task RunScriptAsync(System.Data.Common.DbConnection connection, string name)
    {
        var script = typeof(Database).Assembly.GetManifestResourceNames().Single(n => n.EndsWith($".Scripts.{Provider}.{name}", StringComparison.Ordinal));
        using var reader = new StreamReader(typeof(Database).Assembly.GetManifestResourceStream(script)!);
        await connection.ExecuteAsync(await reader.ReadToEndAsync());
    }

    private static async Task<List<string>> Read(Database database, string sql)
    {
        await using var connection = await database.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i => Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
        }
        return rows;
    }

    [SkippableFact]
    public async Task Should_write_each_lead_of_a_batch_only_at_the_version_it_was_read_at()
    {
        var database = TestDatabase.Create(Provider);
        await Apply(Store(database), Captured("ver-1"), Captured("ver-2"), Captured("ver-3"));
        await using var batch = await new LeadRecords(database).BeginAsync(Now, CancellationToken.None);
        var (leads, _, _) = await batch.LoadAsync(["ver-1", "ver-2", "ver-3"], []);

        // Each provider writes the batch's leads its own way (arrays, a statement run per row, a statement per lead);
        // each must count a lead whose version no longer matches as not written.
        var changes = new LeadChanges();
        foreach (var (id, stored) in leads) changes.Leads[id] = new LeadWrite(stored.Lead, 42, 0, id == "ver-2" ? stored.Version + 1 : stored.Version);

        var conflict = await Assert.ThrowsAsync<LeadVersionConflictException>(() => batch.SaveAsync(changes));
        Assert.Equal("1 of 3 leads changed since they were read.", conflict.Message);
    }

    [SkippableFact]
    public async Task Should_decide_the_history_again_when_an_older_event_arrives_late()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        var (captured, trial, demo, rejected) = MqlThenRejected("late-1");

        // The rejection overtakes the demo request that made the lead an MQL, as competing consumers can make it.
        var early = await Apply(store, captured, trial, rejected);
        Assert.Equal(LeadStage.Lead, (await store.LoadLeadAsync("late-1"))!.Lead.Stage);
        await Apply(store, demo);

        var lead = (await store.LoadLeadAsync("late-1"))!.Lead;
        Assert.Equal(LeadStage.Recycled, lead.Stage);
        Assert.Equal(Now.AddHours(2), lead.FirstMqlAt);
        Assert.Equal(["Mql", "Recycled"], await Transitions(database, "late-1"));
        var outbox = await store.ReadOutboxAsync(1000);
        Assert.Contains(outbox, m => EventJson.Parse(m.Payload) is LeadStageChanged { LeadId: "late-1", To: LeadStage.Recycled });
        Assert.Contains(outbox, m => EventJson.Parse(m.Payload) is LeadHandedToSales { LeadId: "late-1" });
        Assert.Equal(2, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'late-1'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'late-1' AND status = 'pending'"));

        // Redelivering the late event changes nothing more.
        Assert.True(Assert.Single(await Apply(store, demo)).Duplicate);
        Assert.Equal(["Mql", "Recycled"], await Transitions(database, "late-1"));
        Assert.Contains(early, a => a.Decision?.Ignored is not null);
    }

    [SkippableFact]
    public async Task Should_decide_a_leads_events_in_the_order_they_happened_when_one_batch_brings_them_out_of_order()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        var (captured, trial, demo, rejected) = MqlThenRejected("order-1");

        // Backwards in one batch, as concurrent deliveries can hand them over: each is decided in its place, none is late.
        var applied = await Apply(store, rejected, demo, trial, captured);

        Assert.Equal([rejected.EventId, demo.EventId, trial.EventId, captured.EventId], applied.Select(a => a.Event.EventId));
        Assert.All(applied, a => Assert.False(a.Late, $"{a.Event.GetType().Name} was decided as late"));
        Assert.Equal(LeadStage.Recycled, (await store.LoadLeadAsync("order-1"))!.Lead.Stage);
        Assert.Equal(["Mql", "Recycled"], await Transitions(database, "order-1"));
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE lead_id = 'order-1' AND outcome LIKE 'late%'"));
    }

    /// <summary>Captured, a trial an hour later, a demo request (an MQL) after two, rejected by sales after three.</summary>
    private (LeadCaptured Captured, LeadActivityRecorded Trial, LeadActivityRecorded Demo, LeadRejectedBySales Rejected) MqlThenRejected(string leadId) =>
        (Captured(leadId), Did(leadId, ActivityType.TrialStarted, Now.AddHours(1)), Did(leadId, ActivityType.DemoRequested, Now.AddHours(2)),
            new LeadRejectedBySales { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddHours(3), Reason = "no budget" });

    private static async Task<List<string>> Transitions(Database database, string leadId)
    {
        await using var connection = await database.OpenAsync();
        return (await connection.QueryAsync<string>("SELECT to_stage FROM stage_transitions WHERE lead_id = @leadId ORDER BY at", new { leadId })).ToList();
    }

    [SkippableFact]
    public async Task Should_skip_a_welcome_already_overdue_by_more_than_the_grace_period_and_send_a_fresh_one()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);

        // Captured a month ago (moved in late) and an hour ago: only the second lead is welcomed.
        await Apply(store, Captured("old-1", Now.AddDays(-30)), Captured("new-1", Now.AddHours(-1)));

        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'old-1' AND status = 'cancelled' AND last_error = 'skipped: stale on import'"));
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'old-1' AND status = 'pending'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'new-1' AND status = 'pending'"));
        var scheduled = (await store.ReadOutboxAsync(100)).Where(m => m.Type == nameof(NurtureEmailScheduled)).Select(m => ((NurtureEmailScheduled)EventJson.Parse(m.Payload)).LeadId);
        Assert.Equal(["new-1"], scheduled);
    }

    [SkippableFact]
    public async Task Should_record_history_without_nurture_or_messages_and_decide_it_as_live_events()
    {
        var history = TestDatabase.Create(Provider);
        var live = TestDatabase.Create(Provider);
        NurtureMessage[] events = [Captured("h-1", Now.AddHours(-3)), Did("h-1", ActivityType.TrialStarted, Now.AddHours(-2)), Did("h-1", ActivityType.DemoRequested, Now.AddHours(-1))];

        await history.ApplyHistoryAsync(_definition, Now, events);
        await live.ApplyAsync(_definition, Now, events);

        var recorded = (await Store(history).LoadLeadAsync("h-1"))!.Lead;
        Assert.Equal(LeadStage.Mql, recorded.Stage);
        Assert.Equal((await Store(live).LoadLeadAsync("h-1"))!.Lead.Stage, recorded.Stage);
        Assert.Equal(1, await history.CountAsync("SELECT COUNT(*) FROM stage_transitions WHERE lead_id = 'h-1' AND to_stage = 'Mql'"));
        Assert.Equal(0, await history.CountAsync("SELECT COUNT(*) FROM nurture_steps"));
        Assert.Equal(0, await history.CountAsync("SELECT COUNT(*) FROM outbox"));
        Assert.True(await live.CountAsync("SELECT COUNT(*) FROM outbox") > 0, "the same events taken live are announced");
    }

    [SkippableFact]
    public async Task Should_blank_a_capture_that_arrives_after_the_lead_was_erased()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        var erased = new LeadErased { EventId = Id(), LeadId = "erased-1", OccurredAt = Now.AddHours(1) };

        await Apply(store, erased);
        await Apply(store, Captured("erased-1"));

        var history = await store.HistoryAsync("erased-1");
        var captured = Assert.Single(history.OfType<LeadCaptured>());
        Assert.Equal("erased@erased.invalid", captured.Email);
        Assert.Null(captured.FirstName);
        Assert.Null((await store.LoadLeadAsync("erased-1"))!.Lead.Profile.Email);
    }

    [SkippableFact]
    public async Task Should_report_a_redelivered_event_as_a_duplicate_and_apply_it_once()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        var captured = Captured("lead-2");
        var trial = Did("lead-2", ActivityType.TrialStarted);
        await Apply(store, captured, trial);
        var outboxBefore = (await store.ReadOutboxAsync(1000)).Count;

        var tutorial = Did("lead-2", ActivityType.TutorialViewed);

        var again = await Apply(store, trial);
        var inOneBatch = await Apply(store, tutorial, tutorial);

        Assert.True(Assert.Single(again).Duplicate);
        Assert.Equal([false, true], inOneBatch.Select(a => a.Duplicate));
        var lead = (await store.LoadLeadAsync("lead-2"))!;
        Assert.Equal(1, lead.Lead.Activities[ActivityType.TrialStarted]);
        Assert.Equal(1, lead.Lead.Activities[ActivityType.TutorialViewed]);
        Assert.Equal(2, lead.Version); // written by the first batch and the tutorial's; duplicates write nothing
        Assert.True((await store.ReadOutboxAsync(1000)).Count > outboxBefore, "the tutorial changed the score, so a LeadScored was stored");
        Assert.Equal(3, await database.CountAsync("SELECT COUNT(*) FROM lead_events"));
    }

    [SkippableFact]
    public async Task Should_claim_due_steps_under_a_lease_and_hand_a_dead_claimers_rows_to_another()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        await Apply(store, Captured("lead-a"), Captured("lead-b"), Captured("lead-c"));
        var lease = TimeSpan.FromMinutes(5);

        var first = await store.ClaimDueAsync("worker-1", Now.AddHours(1), lease, 10);
        var meanwhile = await store.ClaimDueAsync("worker-2", Now.AddHours(1), lease, 10);
        var afterLease = await store.ClaimDueAsync("worker-2", Now.AddHours(1) + lease + TimeSpan.FromSeconds(1), lease, 10);

        Assert.Equal(3, first.Count);
        Assert.Empty(meanwhile);
        Assert.Equal(first.Select(s => s.Id).Order(), afterLease.Select(s => s.Id).Order());
        Assert.All(afterLease, s => Assert.Equal(2, s.Attempts));
        Assert.False(await store.MarkSentAsync(first[0].Id, "worker-1", "<late@nurture>", Now), "worker-1 lost its claim");
        Assert.True(await store.MarkSentAsync(first[0].Id, "worker-2", "<m1@nurture>", Now));
        Assert.True(await store.MarkFailedAsync(first[1].Id, "worker-2", "451 try later", Now.AddHours(2)));
        Assert.True(await store.MarkFailedAsync(first[2].Id, "worker-2", "550 no such user", retryAt: null));

        var later = await store.ClaimDueAsync("worker-3", Now.AddHours(3), lease, 10);
        Assert.Equal(first[1].Id, Assert.Single(later).Id);
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'failed' AND last_error = '550 no such user'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'sent' AND message_id = '<m1@nurture>'"));
    }

    [SkippableFact]
    public async Task Should_not_claim_steps_before_they_are_due()
    {
        var store = Store(TestDatabase.Create(Provider));
        await store.Database.ApplyAsync(_definition, Now.AddDays(-3), Captured("lead-d", at: Now.AddDays(-3) /* a Friday 09:30 UTC */));

        Assert.Empty(await store.ClaimDueAsync("w", Now.AddDays(-3).AddMinutes(-1), TimeSpan.FromMinutes(1), 10));
        Assert.Single(await store.ClaimDueAsync("w", Now, TimeSpan.FromMinutes(1), 10));
    }

    [SkippableFact]
    public async Task Should_cancel_pending_steps_and_suppress_the_address_on_unsubscribe()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        await Apply(store, Captured("lead-u"));

        await Apply(store, new LeadUnsubscribed { EventId = Id(), LeadId = "lead-u", OccurredAt = Now.AddMinutes(5), Channel = "list-unsubscribe" });

        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'lead-u' AND status = 'cancelled'"));
        Assert.Empty(await store.ClaimDueAsync("w", Now.AddDays(1), TimeSpan.FromMinutes(1), 10));
        Assert.True(await store.IsSuppressedAsync("LEAD-U@softwarehaus.example"));
        Assert.False(await store.IsSuppressedAsync("someone-else@softwarehaus.example"));
    }

    [SkippableFact]
    public async Task Should_write_every_kind_of_row_of_one_batch_with_its_values_and_its_nulls()
    {
        // One batch that writes each table a batch can write, with values of each column type and NULLs among them:
        // PostgreSQL takes each column as one array, SQLite a row at a time, SQL Server a multi-row statement.
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        var spend = new CampaignSpendRecorded
        {
            EventId = Id(), OccurredAt = Now, Channel = "Ads", Amount = 99.50m, Currency = "EUR",
            PeriodStart = new DateOnly(2026, 2, 1), PeriodEnd = new DateOnly(2026, 2, 28),
        };
        await Apply(store,
            Captured("lead-v"), Captured("lead-w"), spend,
            new DealWon { EventId = Id(), LeadId = "lead-v", OccurredAt = Now.AddMinutes(1), Revenue = 1234.56m, Currency = "EUR" },
            new LeadUnsubscribed { EventId = Id(), LeadId = "lead-w", OccurredAt = Now.AddMinutes(2), Channel = "list-unsubscribe" });

        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE lead_id IS NULL AND type = 'CampaignSpendRecorded'"));
        Assert.Equal(4, await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE lead_id IN ('lead-v', 'lead-w') AND outcome IS NOT NULL"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM leads WHERE lead_id = 'lead-w' AND first_mql_at IS NULL AND company = 'Softwarehaus GmbH' AND version = 1"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM leads WHERE lead_id = 'lead-v' AND stage = 'Customer' AND deals_won = 1 AND revenue = 1234.56"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM deals WHERE lead_id = 'lead-v' AND revenue = 1234.56 AND currency = 'EUR'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM stage_transitions WHERE lead_id = 'lead-v' AND to_stage = 'Customer' AND in_stage_seconds = 60"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'lead-v' AND status = 'cancelled' AND attempts = 0 AND last_error IS NOT NULL"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'lead-w' AND status = 'cancelled' AND enrolment = 1 AND step = 0"));
        Assert.True(await store.IsSuppressedAsync("lead-w@softwarehaus.example"));
        await using var connection = await database.OpenAsync();
        var period = (await connection.QueryAsync<(string Channel, decimal Amount, DateTime Start, DateTime End)>("SELECT channel, amount, period_start, period_end FROM spend")).Single();
        Assert.Equal(("ads", 99.50m, new DateTime(2026, 2, 1), new DateTime(2026, 2, 28)), (period.Channel, period.Amount, period.Start, period.End));
        Assert.Equal(spend.EventId, (await connection.QueryAsync<Guid>("SELECT event_id FROM spend")).Single());
    }

    [SkippableFact]
    public async Task Should_re_enrol_a_recycled_lead_as_a_new_enrolment()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        await Apply(store, Captured("lead-r"), Did("lead-r", ActivityType.TrialStarted), Did("lead-r", ActivityType.DemoRequested));

        await Apply(store, new LeadRejectedBySales { EventId = Id(), LeadId = "lead-r", OccurredAt = Now.AddDays(1), Reason = "wants to wait" });

        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'lead-r' AND enrolment = 1 AND status = 'cancelled'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'lead-r' AND enrolment = 2 AND status = 'pending'"));
    }

    [SkippableFact]
    public async Task Should_blank_personal_fields_in_the_lead_and_its_history_on_erase()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        await Apply(store, Captured("lead-e"), Did("lead-e", ActivityType.WebinarAttended));

        await Apply(store, new LeadErased { EventId = Id(), LeadId = "lead-e", OccurredAt = Now.AddDays(1) });

        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM leads WHERE email IS NOT NULL OR first_name IS NOT NULL OR company IS NOT NULL"));
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE payload LIKE '%Anna%' OR payload LIKE '%lead-e@%'"));
        var lead = (await store.LoadLeadAsync("lead-e"))!.Lead;
        Assert.True(lead.Erased);
        Assert.Null(lead.Profile.Email);
        Assert.Equal("software", lead.Profile.Industry);
    }

    [SkippableFact]
    public async Task Should_count_the_funnel_and_value_inputs_in_sql_as_the_domain_does()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        var definition = DefaultDefinition.Create();
        var phone = new DateTimeOffset(2026, 1, 10, 9, 0, 0, TimeSpan.Zero);
        // A quote signed by phone: a deal won by a lead that never was an MQL skips MQL, SAL and SQL.
        List<NurtureMessage> events =
        [
            .. Cli.SampleLeads.Generate(60, seed: 3, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), days: 90, definition),
            new LeadCaptured { EventId = Guid.NewGuid(), LeadId = "phone-deal", OccurredAt = phone, Email = "kai@garten.example", Source = "seo", Consent = true },
            new DealWon { EventId = Guid.NewGuid(), LeadId = "phone-deal", OccurredAt = phone.AddDays(2), Revenue = 8450m, Currency = "EUR" },
        ];
        events.Sort((a, b) => a.OccurredAt.CompareTo(b.OccurredAt));
        foreach (var chunk in events.Chunk(100)) await database.ApplyAsync(definition, Now, [.. chunk]);
        var end = events[^1].OccurredAt;
        var replay = Replay.Run(events, definition, end);

        var funnel = await store.ReadFunnelAsync();
        var cohorts = await store.ReadCohortsAsync(end.AddDays(-definition.Value.SalesCycleDays));
        var spend = await store.ReadSpendAsync();

        // Replay rescored for decay at the end; storage has not run a decay pass, so compare what decay cannot change.
        Assert.Equal(replay.Summary.Funnel.Select(f => (f.Stage, f.Reached, f.Skipped)), funnel.Select(f => (f.Stage, f.Reached, f.Skipped)));
        // The phone deal, counted apart and never as reached, on top of whatever the generated leads skipped (an MQL
        // whose deal sales won without accepting it skips SAL and SQL only).
        var generated = Replay.Run(events.Where(e => e is not LeadEvent { LeadId: "phone-deal" }), definition, end).Summary.Funnel;
        Assert.Contains(replay.Leads.Single(l => l.LeadId == "phone-deal").Transitions, t => t.To == LeadStage.Customer && t.Skipped.Count == 3);
        Assert.Equal(generated.Select(f => f.Skipped).Zip([0, 1, 1, 1, 0], (a, b) => a + b), funnel.Select(f => f.Skipped));
        var (overall, bySource) = MqlValue.EstimateAll(cohorts.OldEnough, definition.Value);
        Assert.Equal(replay.Summary.MqlValue, overall);
        Assert.Equal(replay.Summary.MqlValueBySource.Where(v => v.Mqls > 0), bySource);
        // Every MQL a source ever brought, read in the same pass: what a cutoff after every first MQL counts as old enough.
        var everything = await store.ReadCohortsAsync(DateTimeOffset.MaxValue);
        Assert.Equal(everything.OldEnough, everything.Ever);
        Assert.Equal(everything.Ever, cohorts.Ever);
        var january = await store.ReadCohortsAsync(new DateTimeOffset(2026, 1, 31, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(cohorts.Ever, january.Ever);
        Assert.InRange(january.OldEnough.Sum(c => c.Mqls), 1, january.Ever.Sum(c => c.Mqls) - 1);
        Assert.Equal(replay.Summary.SpendByChannel.ToDictionary(s => s.Key, s => s.Value.Spend), spend.ToDictionary(s => s.Key, s => s.Value));
    }

    [SkippableFact]
    public async Task Should_keep_a_rejected_event_with_its_reason()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);

        await store.RecordRejectedAsync("api", "leadId: required but missing.", """{"type":"LeadCaptured"}""", Now);

        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM rejected_events WHERE reason = 'leadId: required but missing.' AND origin = 'api'"));
    }

    [SkippableFact]
    public async Task Should_claim_the_outbox_for_one_relay_and_give_back_what_it_could_not_publish()
    {
        var store = Store(TestDatabase.Create(Provider));
        await Apply(store, Captured("lead-o"));
        var pending = await store.ReadOutboxAsync(100);

        var first = await store.ClaimOutboxAsync("relay-a", 100, Now, TimeSpan.FromMinutes(2));
        Assert.Empty(await store.ClaimOutboxAsync("relay-b", 100, Now, TimeSpan.FromMinutes(2)));
        await store.ReleaseOutboxAsync("relay-a", first.Select(m => m.MessageId).ToList());
        var second = await store.ClaimOutboxAsync("relay-b", 100, Now, TimeSpan.FromMinutes(2));
        Assert.Empty(await store.MarkPublishedAsync("relay-a", second.Select(m => m.MessageId).ToList(), Now));
        Assert.Equal(second.Select(m => m.Id), (await store.MarkPublishedAsync("relay-b", second.Select(m => m.MessageId).ToList(), Now)).Order());

        Assert.NotEmpty(pending);
        Assert.Equal(pending.Select(m => m.MessageId), first.Select(m => m.MessageId));
        Assert.Equal(pending.Select(m => m.MessageId), second.Select(m => m.MessageId));
        Assert.Empty(await store.ReadOutboxAsync(100));
        Assert.Empty(await store.ClaimOutboxAsync("relay-a", 100, Now.AddHours(1), TimeSpan.FromMinutes(2)));
    }

    [SkippableFact]
    public async Task Should_claim_only_the_outbox_rows_above_the_id_the_relay_asks_from()
    {
        var store = Store(TestDatabase.Create(Provider));
        await Apply(store, Captured("lead-f1"));
        await Apply(store, Captured("lead-f2"));
        var pending = await store.ReadOutboxAsync(100);
        var floor = pending[pending.Count / 2].Id;

        var above = await store.ClaimOutboxAsync("relay-a", 100, Now, TimeSpan.FromMinutes(2), after: floor);
        var rest = await store.ClaimOutboxAsync("relay-a", 100, Now, TimeSpan.FromMinutes(2));

        Assert.True(pending.Count >= 4, $"{pending.Count} outbox rows");
        Assert.Equal(pending.Where(m => m.Id > floor).Select(m => m.Id), above.Select(m => m.Id));
        Assert.Equal(pending.Where(m => m.Id <= floor).Select(m => m.Id), rest.Select(m => m.Id));
    }

    [SkippableFact]
    public async Task Should_record_a_sent_email_once_for_its_claimer_with_the_next_step_and_nothing_after_a_cancelled_one()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        await Apply(store, Captured("send-1"), Captured("send-2"));
        var claimed = await store.ClaimDueAsync("w", Now.AddDays(30), TimeSpan.FromMinutes(5), 10);
        var first = claimed.Single(s => s.LeadId == "send-1");
        var second = claimed.Single(s => s.LeadId == "send-2");
        var scheduledBefore = await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailScheduled'");
        StepDue Next(ClaimedStep step) => new(step.Track, step.Step + 1, "next-template", Now.AddDays(3));

        Assert.False(await store.RecordSentAsync(first, "another-worker", "<1@nurture>", Now, Next(first)), "not its claim");
        Assert.True(await store.RecordSentAsync(first, "w", "<1@nurture>", Now, Next(first)));
        Assert.True(await store.RecordSentAsync(first, "w", "<1@nurture>", Now, Next(first)), "recorded again after an answer that got lost");
        await store.EndNurtureAsync("send-2", "goal reached"); // while its email was on the way
        Assert.True(await store.RecordSentAsync(second, "w", "<2@nurture>", Now, Next(second)));

        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'send-1' AND status = 'sent' AND message_id = '<1@nurture>'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'send-1' AND status = 'pending' AND template = 'next-template'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'send-2' AND status = 'sent' AND message_id = '<2@nurture>'"));
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'send-2' AND status <> 'sent'"));
        Assert.Equal(2, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailSent'"));
        Assert.Equal(scheduledBefore + 1, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailScheduled'"));
    }

    [SkippableFact]
    public async Task Should_record_a_group_of_sent_emails_in_one_call_each_with_its_own_answer()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        await Apply(store, Captured("group-1"), Captured("group-2"), Captured("group-3"));
        var claimed = await store.ClaimDueAsync("w", Now.AddDays(30), TimeSpan.FromMinutes(5), 10);
        var one = claimed.Single(s => s.LeadId == "group-1");
        var two = claimed.Single(s => s.LeadId == "group-2");
        var three = claimed.Single(s => s.LeadId == "group-3");
        // Another worker took step two after this one's lease ran out.
        await using (var connection = await database.OpenAsync())
        {
            Assert.Equal(1, await connection.ExecuteAsync("UPDATE nurture_steps SET claimed_by = 'other' WHERE id = @Id", new { two.Id }));
        }
        StepDue Next(ClaimedStep step) => new(step.Track, step.Step + 1, "next-template", Now.AddDays(3).ToOffset(TimeSpan.FromHours(1)));

        var answers = await store.RecordSentAsync(
            [new SentEmail(one, "<g1@nurture>", Now, Next(one)), new SentEmail(two, "<g2@nurture>", Now, Next(two)), new SentEmail(three, "<g3@nurture>", Now, null)], "w");
        var again = await store.RecordSentAsync([new SentEmail(three, "<g3@nurture>", Now, null), new SentEmail(one, "<g1@nurture>", Now, Next(one))], "w");

        Assert.Equal([true, false, true], answers);
        Assert.Equal([true, true], again);
        Assert.Equal(2, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id IN ('group-1', 'group-3') AND status = 'sent' AND message_id IN ('<g1@nurture>', '<g3@nurture>')"));
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'group-2' AND status = 'sent'"));
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'group-1' AND status = 'pending' AND template = 'next-template'"));
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id IN ('group-2', 'group-3') AND template = 'next-template'"));
        Assert.Equal(2, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'NurtureEmailSent'"));
    }

    [SkippableFact]
    public async Task Should_hand_the_rows_of_a_relay_that_died_to_another_when_its_lease_ends()
    {
        var store = Store(TestDatabase.Create(Provider));
        await Apply(store, Captured("lead-d"));

        var dead = await store.ClaimOutboxAsync("relay-dead", 100, Now, TimeSpan.FromMinutes(2));
        Assert.Empty(await store.ClaimOutboxAsync("relay-b", 100, Now.AddMinutes(1), TimeSpan.FromMinutes(2)));
        var taken = await store.ClaimOutboxAsync("relay-b", 100, Now.AddMinutes(3), TimeSpan.FromMinutes(2));

        Assert.NotEmpty(dead);
        Assert.Equal(dead.Select(m => m.Id), taken.Select(m => m.Id));
    }

    /// <summary>The hand-over as a relay listening as "relay-here" has it; no relay runs, the test takes what is handed over.</summary>
    private static OutboxSignal Listened(int limit)
    {
        var outbox = new OutboxSignal();
        outbox.Listen("relay-here", TimeSpan.FromMinutes(2), limit, margin: TimeSpan.FromSeconds(30));
        return outbox;
    }

    [SkippableFact]
    public async Task Should_store_a_batchs_messages_claimed_for_the_relay_listening_and_hand_them_over_once_committed()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        using var outbox = Listened(limit: 100);
        var handler = Handlers.For(database, _definition, new Handlers.FixedClock(Now), outbox);

        await handler.HandleNowAsync([Captured("lead-h"), Did("lead-h", ActivityType.TrialStarted, Now.AddMinutes(5))], "test", CancellationToken.None);

        var stored = await store.ReadOutboxAsync(100);
        var handed = outbox.Take(100, Now);
        Assert.NotEmpty(stored);
        Assert.Equal(stored.Select(m => m.MessageId).Order(), handed.Select(m => m.EventId).Order());
        Assert.False(outbox.TakeNudge(), "handed over, nothing for a claim");
        Assert.Equal(stored.Count, await database.CountAsync(
            "SELECT COUNT(*) FROM outbox WHERE claimed_by = 'relay-here' AND claim_until IS NOT NULL AND published_at IS NULL"));
        // Another relay leaves them to this one while its lease lasts, and takes them once it ran out (this one died).
        Assert.Empty(await store.ClaimOutboxAsync("relay-b", 100, Now.AddMinutes(1), TimeSpan.FromMinutes(2)));
        var taken = await store.ClaimOutboxAsync("relay-b", 100, Now.AddMinutes(3), TimeSpan.FromMinutes(2));
        Assert.Equal(stored.Select(m => m.MessageId), taken.Select(m => m.MessageId));
    }

    [SkippableFact]
    public async Task Should_store_a_batchs_messages_for_any_relay_to_claim_when_none_listens_or_its_hand_over_is_full()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        using var outbox = new OutboxSignal();
        var handler = Handlers.For(database, _definition, new Handlers.FixedClock(Now), outbox);

        await handler.HandleNowAsync([Captured("lead-n1")], "test", CancellationToken.None);
        outbox.Listen("relay-here", TimeSpan.FromMinutes(2), limit: 1, margin: TimeSpan.FromSeconds(30));
        await handler.HandleNowAsync([Captured("lead-n2")], "test", CancellationToken.None);

        var stored = await store.ReadOutboxAsync(100);
        Assert.True(stored.Count(m => m.Payload.Contains("lead-n2", StringComparison.Ordinal)) > 1, "more messages than the limit");
        Assert.Empty(outbox.Take(100, Now));
        Assert.True(outbox.TakeNudge(), "rows stored for a claim");
        Assert.Equal(0, await database.CountAsync("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL"));
        var taken = await store.ClaimOutboxAsync("relay-b", 100, Now, TimeSpan.FromMinutes(2));
        Assert.Equal(stored.Select(m => m.MessageId), taken.Select(m => m.MessageId));
    }

    [SkippableFact]
    public async Task Should_leave_a_late_events_messages_to_a_claim_so_that_its_historys_messages_are_not_published_again()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        using var outbox = Listened(limit: 100);
        var handler = Handlers.For(database, _definition, new Handlers.FixedClock(Now), outbox);
        var (captured, trial, demo, rejected) = MqlThenRejected("late-h");
        await handler.HandleNowAsync([captured, trial, rejected], "test", CancellationToken.None);
        var first = outbox.Take(100, Now);
        var storedBefore = (await store.ReadOutboxAsync(1000)).Select(m => m.MessageId).ToHashSet();

        await handler.HandleNowAsync([demo], "test", CancellationToken.None);

        Assert.NotEmpty(first);
        Assert.Empty(outbox.Take(100, Now));
        Assert.True(outbox.TakeNudge(), "the late event's new rows are left to a claim");
        // The late event's new rows, and only those, are free for a claim (the first batch's are this relay's).
        var added = (await store.ReadOutboxAsync(1000)).Select(m => m.MessageId).Where(id => !storedBefore.Contains(id)).ToList();
        var claimed = await store.ClaimOutboxAsync("relay-b", 1000, Now, TimeSpan.FromMinutes(2));
        Assert.Contains(claimed, m => EventJson.Parse(m.Payload) is LeadHandedToSales { LeadId: "late-h" });
        Assert.Equal(added.Order(), claimed.Select(m => m.MessageId).Order());
    }

    [SkippableFact]
    public async Task Should_blank_what_waits_handed_over_about_a_lead_when_it_is_erased()
    {
        var database = TestDatabase.Create(Provider);
        var store = Store(database);
        using var outbox = Listened(limit: 1000);
        var handler = Handlers.For(database, _definition, new Handlers.FixedClock(Now), outbox);
        var (captured, trial, demo, rejected) = MqlThenRejected("erase-h");
        await handler.HandleNowAsync([captured, trial, demo, rejected, Captured("other-h")], "test", CancellationToken.None);
        var handed = (await store.ReadOutboxAsync(1000)).Count;

        await handler.HandleNowAsync([new LeadErased { EventId = Id(), LeadId = "erase-h", OccurredAt = Now.AddHours(4) }], "test", CancellationToken.None);

        var waiting = outbox.Take(1000, Now);
        var recycled = Assert.Single(waiting.OfType<LeadStageChanged>(), m => m.LeadId == "erase-h" && m.To == LeadStage.Recycled);
        Assert.DoesNotContain("no budget", recycled.Reason, StringComparison.Ordinal);
        Assert.Contains(waiting, m => m is LeadScored { LeadId: "other-h" });
        Assert.Equal(handed, waiting.Count);
        Assert.DoesNotContain(await store.ReadOutboxAsync(1000), m => m.Payload.Contains("no budget", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task Should_change_nothing_when_migrations_run_twice()
    {
        var database = TestDatabase.Create(Provider);

        var again = database.Migrate();

        Assert.Empty(again);
        Assert.Equal(database.Scripts().Count, await database.CountAsync("SELECT COUNT(*) FROM schemaversions"));
    }

    [SkippableFact]
    public async Task Should_upgrade_a_database_at_an_older_schema_keeping_its_data()
    {
        var database = TestDatabase.Create(Provider, migrate: false);
        database.Migrate(onlyScripts: name => name.Contains(".0001_", StringComparison.Ordinal));
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("""
                INSERT INTO leads (lead_id, stage, furthest_stage, score, fit, source, first_seen_at, stage_entered_at, deals_won, revenue, state, version, updated_at)
                VALUES ('lead-old', 'Lead', 'Lead', 0, 0, 'webinar', @Now, @Now, 0, 0, @State, 1, @Now)
                """, new { Now, State = LeadStore.WriteState(Lead.New("lead-old", Now)) });
        }

        var applied = database.Migrate();

        Assert.Equal(database.Scripts().Where(s => !s.Contains(".0001_", StringComparison.Ordinal)), applied); // every later script, in order
        Assert.NotNull(await Store(database).LoadLeadAsync("lead-old"));
        await Store(database).RecordRejectedAsync("bus", "why", "{}", Now);
    }
}

public class Sqlite_storage() : StorageSuite(DatabaseProvider.Sqlite);

public class PostgreSql_storage() : StorageSuite(DatabaseProvider.PostgreSql);

public class SqlServer_storage() : StorageSuite(DatabaseProvider.SqlServer);
