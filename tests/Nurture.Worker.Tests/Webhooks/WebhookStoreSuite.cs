using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Storage;
using Nurture.Worker.Webhooks;

namespace Nurture.Worker.Tests.Webhooks;

/// <summary>The delivery log on every provider: outbox rows after the cursor become deliveries, sent in order per lead.</summary>
public abstract class WebhookStoreSuite(DatabaseProvider provider)
{
    private static readonly DateTimeOffset Now = new(2026, 3, 2, 9, 30, 0, TimeSpan.Zero);
    private static readonly WebhookSubscription Crm = new("crm", new Uri("http://127.0.0.1:9/hooks"), ["LeadStageChanged", "LeadHandedToSales"], new byte[32]);

    [SkippableFact]
    public async Task Should_read_the_outbox_after_its_cursor_once_and_hold_a_leads_later_message_behind_its_earlier_one()
    {
        var database = TestDatabase.Create(provider);
        var store = new LeadStore(database);
        var webhooks = new WebhookStore(database);
        await database.ApplyAsync(DefaultDefinition.Create(), Now, Captured("before"));
        await webhooks.EnsureCursorsAsync([Crm.Name], default);
        await database.ApplyAsync(DefaultDefinition.Create(), Now,
            Captured("mql-1"),
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = "mql-1", OccurredAt = Now, Activity = ActivityType.TrialStarted },
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = "mql-1", OccurredAt = Now, Activity = ActivityType.DemoRequested });

        var read = await webhooks.EnqueueAsync(Crm, Now, Now.AddMinutes(1), 500, default);
        var again = await webhooks.EnqueueAsync(Crm, Now, Now.AddMinutes(1), 500, default);

        Assert.True(read > 2);
        Assert.Equal(0, again);
        Assert.Equal(2, (await webhooks.ListAsync(null, 10, default)).Count); // only the types asked for, only after the cursor
        var head = Assert.Single(await webhooks.DueAsync(Now.AddSeconds(1), 100, default));
        Assert.Equal("LeadStageChanged", head.Type);
        Assert.Contains("\"mql-1\"", head.Payload, StringComparison.Ordinal);
        Assert.True(await webhooks.ClaimAsync(head.Id, Now.AddSeconds(1), Now.AddMinutes(1), default));
        Assert.False(await webhooks.ClaimAsync(head.Id, Now.AddSeconds(2), Now.AddMinutes(1), default)); // another worker

        await webhooks.MarkFailedAsync(head.Id, givenUp: false, 503, "HTTP 503", Now.AddSeconds(10), default);
        Assert.Empty(await webhooks.DueAsync(Now.AddSeconds(5), 100, default)); // not due yet, and the hand-off waits behind it
        Assert.Equal(head.Id, Assert.Single(await webhooks.DueAsync(Now.AddSeconds(11), 100, default)).Id);
        await webhooks.MarkDeliveredAsync(head.Id, 200, Now.AddSeconds(11), default);
        var next = Assert.Single(await webhooks.DueAsync(Now.AddSeconds(12), 100, default));

        Assert.Equal("LeadHandedToSales", next.Type);
        var counts = await webhooks.CountByStatusAsync(default);
        Assert.Equal(1, counts["delivered"]);
        Assert.Equal(1, counts["pending"]);
        var delivered = Assert.Single(await webhooks.ListAsync("delivered", 10, default));
        Assert.Equal((200, 2, "mql-1"), (delivered.LastStatusCode, delivered.Attempts, delivered.OrderKey));
    }

    private static LeadCaptured Captured(string leadId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = Now, Email = $"{leadId}@softwarehaus.example", Industry = "software", CompanySize = 50,
        Country = "DE", Role = "Head of IT", Source = "webinar", Consent = true,
    };
}

public class Sqlite_webhook_store() : WebhookStoreSuite(DatabaseProvider.Sqlite);

public class PostgreSql_webhook_store() : WebhookStoreSuite(DatabaseProvider.PostgreSql);

public class SqlServer_webhook_store() : WebhookStoreSuite(DatabaseProvider.SqlServer);
