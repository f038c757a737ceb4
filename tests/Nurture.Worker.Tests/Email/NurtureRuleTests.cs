using Microsoft.Extensions.Time.Testing;
using Nurture.Contracts;
using Nurture.Worker.Tests.Messaging;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Email;

/// <summary>The send rules with time moved by FakeTimeProvider; emails go to the pickup folder.</summary>
public class When_time_passes_for_nurtured_leads
{
    private static string[] Sent(MailRig rig) => Directory.Exists(rig.MailFolder) ? Directory.GetFiles(rig.MailFolder, "*.eml") : [];

    private static async Task<List<DateTimeOffset>> SendTimes(MailRig rig, string leadId)
    {
        await using var connection = await rig.Database.OpenAsync();
        var times = await Dapper.SqlMapper.QueryAsync<DateTimeOffset>(connection, "SELECT sent_at FROM nurture_steps WHERE lead_id = @leadId AND status = 'sent' ORDER BY sent_at", new { leadId });
        return [.. times];
    }

    [Fact]
    public async Task Should_hold_a_step_until_the_send_window_opens_in_the_lead_time_zone()
    {
        // 12:00 UTC on a Monday is 07:00 in New York; the window opens at 09:00 there (14:00 UTC).
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 2, 12, 0, 0, TimeSpan.Zero));
        await using var rig = await MailRig.StartAsync(clock: clock);
        await rig.Apply(MailRig.Captured("ny-1", clock.GetUtcNow(), "joe@example.com", timeZone: "America/New_York", language: "en"));

        await rig.Dispatch.DispatchAllDueAsync();
        Assert.Empty(Sent(rig));
        clock.Advance(TimeSpan.FromHours(1.99));
        await rig.Dispatch.DispatchAllDueAsync();
        Assert.Empty(Sent(rig));
        clock.Advance(TimeSpan.FromMinutes(1));
        await rig.Dispatch.DispatchAllDueAsync();

        Assert.Single(Sent(rig));
        var local = TimeZoneInfo.ConvertTime((await SendTimes(rig, "ny-1")).Single(), TimeZoneInfo.FindSystemTimeZoneById("America/New_York"));
        Assert.Equal(9, local.Hour);
    }

    [Fact]
    public async Task Should_never_send_more_than_the_cap_allows_in_any_period()
    {
        await using var rig = await MailRig.StartAsync();
        await rig.Apply(MailRig.Captured("cap-1", MailRig.Monday, "cap@softwarehaus.example"));

        await rig.RunFor(TimeSpan.FromDays(30), TimeSpan.FromHours(1));

        var times = await SendTimes(rig, "cap-1");
        var cap = rig.Definition.Nurture.FrequencyCap;
        Assert.Equal(4, times.Count); // every step of the software track went out in the end
        Assert.All(times, t => Assert.True(times.Count(o => o > t.AddDays(-cap.PerDays) && o <= t) <= cap.MaxEmails, $"more than {cap.MaxEmails} emails in the {cap.PerDays} days before {t:O}"));
        var zone = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        Assert.All(times, t => Assert.InRange(TimeZoneInfo.ConvertTime(t, zone).Hour, 9, 16));
    }

    [Fact]
    public async Task Should_cancel_what_is_left_when_the_lead_reaches_a_goal_and_restart_when_it_is_recycled()
    {
        await using var rig = await MailRig.StartAsync();
        await rig.Apply(MailRig.Captured("goal-1", MailRig.Monday, "goal@softwarehaus.example"));
        await rig.Dispatch.DispatchAllDueAsync();
        Assert.Single(Sent(rig));

        rig.Clock.Advance(TimeSpan.FromMinutes(1));
        await rig.Apply(new LeadQualifiedBySales { EventId = Guid.NewGuid(), LeadId = "goal-1", OccurredAt = rig.Clock.GetUtcNow() });
        await rig.RunFor(TimeSpan.FromDays(20), TimeSpan.FromHours(6));

        Assert.Single(Sent(rig));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'goal-1' AND status IN ('pending', 'claimed')"));
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'goal-1' AND status = 'cancelled' AND last_error = 'reached Sql'"));

        await rig.Apply(new DealLost { EventId = Guid.NewGuid(), LeadId = "goal-1", OccurredAt = rig.Clock.GetUtcNow(), Reason = "timing" });
        await rig.RunFor(TimeSpan.FromDays(1), TimeSpan.FromHours(1));
        Assert.Equal(2, Sent(rig).Length); // recycled: the track starts again as a new enrolment
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'goal-1' AND enrolment = 2 AND step = 0 AND status = 'sent'"));
    }

    [Fact]
    public async Task Should_record_an_email_sent_while_its_lead_reached_a_goal_and_schedule_nothing_after_it()
    {
        await using var rig = await MailRig.StartAsync();
        await rig.Apply(MailRig.Captured("race-1", MailRig.Monday, "race@softwarehaus.example"));
        var claimed = Assert.Single(await rig.Store.ClaimDueAsync("sender", rig.Clock.GetUtcNow(), TimeSpan.FromMinutes(5), 10));

        rig.Clock.Advance(TimeSpan.FromMinutes(1));
        await rig.Apply(new LeadQualifiedBySales { EventId = Guid.NewGuid(), LeadId = "race-1", OccurredAt = rig.Clock.GetUtcNow() }); // while the email is on its way
        var next = Nurture.Core.NurturePlan.Next((await rig.Store.LoadLeadAsync("race-1"))!.Lead, claimed.Track, claimed.Step, rig.Clock.GetUtcNow(), rig.Definition);

        Assert.True(await rig.Store.RecordSentAsync(claimed, "sender", "<race@nurture>", rig.Clock.GetUtcNow(), next));
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'race-1' AND status = 'sent'"));
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'race-1'"));
    }

    [Fact]
    public async Task Should_take_over_a_claim_after_the_lease_when_its_worker_died()
    {
        await using var rig = await MailRig.StartAsync();
        await rig.Apply(MailRig.Captured("lease-1", MailRig.Monday, "lease@softwarehaus.example"));
        var dead = await rig.Store.ClaimDueAsync("a-worker-that-died", rig.Clock.GetUtcNow(), TimeSpan.FromMinutes(5), 10);
        Assert.Single(dead);

        await rig.Dispatch.DispatchAllDueAsync();
        Assert.Empty(Sent(rig));
        rig.Clock.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        await rig.Dispatch.DispatchAllDueAsync();
        await rig.Dispatch.DispatchAllDueAsync();

        Assert.Single(Sent(rig));
        Assert.False(await rig.Store.MarkSentAsync(dead[0].Id, "a-worker-that-died", "late", rig.Clock.GetUtcNow())); // its claim is gone
    }
}

/// <summary>A worker stopped with steps pending: Quartz drives the dispatch again after the restart.</summary>
public class When_the_worker_restarts
{
    [Fact]
    public async Task Should_send_each_pending_step_once_after_it_starts_again()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-restart-").FullName;
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero)); // a Sunday: nothing may go out
        await using (var first = await MailRig.StartAsync(jobs: true, folder: folder, clock: clock))
        {
            await first.Apply(
                MailRig.Captured("restart-1", clock.GetUtcNow(), "one@softwarehaus.example"),
                MailRig.Captured("restart-2", clock.GetUtcNow(), "two@softwarehaus.example"),
                MailRig.Captured("restart-3", clock.GetUtcNow(), "three@softwarehaus.example"));
            await Task.Delay(1500); // the job runs at least once while nothing is due
            Assert.False(Directory.Exists(first.MailFolder) && Directory.GetFiles(first.MailFolder).Length > 0);
        }

        clock.Advance(TimeSpan.FromHours(21)); // Monday 09:00 in Berlin
        await using var second = await MailRig.StartAsync(jobs: true, folder: folder, clock: clock);
        await Eventually.Until(() => second.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 0 AND status = 'sent'"), n => n == 3, TimeSpan.FromSeconds(30), "the three pending steps sent");
        await Task.Delay(2500); // more rounds of the job: nothing goes out twice

        Assert.Equal(3, Directory.GetFiles(second.MailFolder, "*.eml").Length);
        Assert.Equal(3, await second.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE status = 'sent'"));
        Assert.Equal(3, await second.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps WHERE step = 1 AND status = 'pending'"));
    }
}
