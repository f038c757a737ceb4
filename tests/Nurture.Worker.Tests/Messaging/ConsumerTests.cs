using System.Diagnostics.Metrics;
using System.Text;
using Dapper;
using MassTransit;
using MassTransit.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Messaging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>The consumer on MassTransit's in-memory transport, started as the worker starts it, with a real SQLite database.</summary>
public sealed class When_events_arrive_on_the_bus : IAsyncLifetime, IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 3, 2, 9, 30, 0, TimeSpan.Zero);
    private readonly Database _database = TestDatabase.Create(DatabaseProvider.Sqlite);
    private readonly BusTraffic _traffic = new();
    private ServiceProvider _provider = null!;
    private MeterCounts _counts = null!;
    private IBus _bus = null!;
    private int _ids;

    public async Task InitializeAsync()
    {
        var services = new ServiceCollection().AddLogging();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Nurture"] = _database.ConnectionString,
            ["Nurture:Bus:OutboxPollMs"] = "50",
            ["Nurture:Schedule:Enabled"] = "false",
            ["Nurture:Email:PublicUrl"] = "http://localhost:5080/",
        }).Build();
        WorkerHost.AddWorker(services, configuration);
        _provider = services.BuildServiceProvider(validateScopes: true);
        _counts = new MeterCounts(_provider);
        _bus = _provider.GetRequiredService<IBus>();
        _bus.ConnectPublishObserver(_traffic);
        _bus.ConnectSendObserver(_traffic);
        foreach (var hosted in _provider.GetServices<IHostedService>()) await hosted.StartAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        foreach (var hosted in _provider.GetServices<IHostedService>().Reverse()) await hosted.StopAsync(CancellationToken.None);
        _counts.Dispose();
        await _provider.DisposeAsync();
    }

    public void Dispose() => _counts.Dispose();

    private long Counter(string name) => _counts[name];

    private Guid Id() => Lifecycle.DerivedId(Guid.Empty, $"bus-test/{++_ids}");

    private LeadCaptured Captured(string leadId, string email = "anna@softwarehaus.example") => new()
    {
        EventId = Id(), LeadId = leadId, OccurredAt = Now, Email = email, FirstName = "Anna", Industry = "software",
        CompanySize = 50, Country = "DE", TimeZone = "Europe/Berlin", Language = "de", Source = "webinar", Consent = true,
    };

    private LeadActivityRecorded Did(string leadId, ActivityType activity, int minutes) =>
        new() { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(minutes), Activity = activity };

    private Task<long> Count(string sql, object? parameters = null) => _database.CountAsync(sql, parameters);

    [Fact]
    public async Task Should_store_each_event_and_publish_the_stage_change_from_the_outbox()
    {
        await _bus.Publish(Captured("bus-1"));
        await _bus.Publish(Did("bus-1", ActivityType.TrialStarted, 5));
        await _bus.Publish(Did("bus-1", ActivityType.DemoRequested, 10));

        var store = _provider.GetRequiredService<LeadStore>();
        await Eventually.Until(() => store.LoadLeadAsync("bus-1"), l => l?.Lead.Stage == LeadStage.Mql, what: "bus-1 to become an MQL");
        await Eventually.Until(() => Count("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0, what: "the outbox to empty");
        var stageChanged = _traffic.Published.Single(x => x.Message is LeadStageChanged { LeadId: "bus-1", To: LeadStage.Mql });
        Assert.Contains(_traffic.Published, x => x.Message is LeadHandedToSales { LeadId: "bus-1" });
        Assert.Equal(((LeadStageChanged)stageChanged.Message).EventId, stageChanged.MessageId); // the outbox id travels as the message id
        // Counted just after the commit, and the relay may publish before that.
        await Eventually.Until(() => Task.FromResult(Counter("nurture.events.processed")), n => n >= 3, what: "the events counted");
        Assert.Equal(3, Counter("nurture.events.processed"));
    }

    [Fact]
    public async Task Should_apply_a_duplicated_event_once_and_count_the_duplicate()
    {
        var captured = Captured("bus-2");
        await _bus.Publish(captured);
        await Eventually.Until(() => Count("SELECT COUNT(*) FROM leads WHERE lead_id = 'bus-2'"), n => n == 1, what: "bus-2 stored");
        await _bus.Publish(captured);

        await Eventually.Until(() => Task.FromResult(Counter("nurture.events.duplicated")), n => n == 1, what: "the duplicate counted");
        Assert.Equal(1, await Count("SELECT COUNT(*) FROM lead_events WHERE lead_id = 'bus-2'"));
        Assert.Equal(1, await Count("SELECT COUNT(*) FROM nurture_steps WHERE lead_id = 'bus-2'"));
        Assert.Equal(1, (await _provider.GetRequiredService<LeadStore>().LoadLeadAsync("bus-2"))!.Version);
    }

    [Fact]
    public async Task Should_store_a_lone_event_on_its_own_and_a_rush_in_batches_no_larger_than_the_batch_size()
    {
        // Quiet: one event is stored alone, at once; it does not wait for company.
        await _bus.Publish(Captured("lone-1"));
        await Eventually.Until(() => Count("SELECT COUNT(*) FROM lead_events WHERE lead_id = 'lone-1'"), n => n == 1, what: "the lone event stored");
        // A batch is counted just after its commit: the row can be seen before the measurement is taken.
        await Eventually.Until(() => Task.FromResult(_counts.Measurements("nurture.events.batch_size").Count), n => n >= 1, what: "the lone batch counted");
        Assert.Equal([1L], _counts.Measurements("nurture.events.batch_size"));

        // A rush: 600 events at once wait for the transaction in front of them and go in together.
        var rush = Enumerable.Range(0, 600).Select(i => Captured($"rush-{i}", $"rush{i}@example.com")).ToList();
        await Task.WhenAll(rush.Select(e => _bus.Publish(e)));
        await Eventually.Until(() => Count("SELECT COUNT(*) FROM lead_events WHERE lead_id LIKE 'rush-%'"), n => n == rush.Count, what: "the rush stored");
        await Eventually.Until(() => Task.FromResult(_counts.Measurements("nurture.events.batch_size").Skip(1).Sum()), n => n >= rush.Count, what: "every batch counted");

        var batches = _counts.Measurements("nurture.events.batch_size").Skip(1).ToList();
        Assert.Equal(rush.Count, batches.Sum());
        Assert.All(batches, n => Assert.InRange(n, 1, 100));
        Assert.True(batches.Count < rush.Count / 2, $"600 events took {batches.Count} transactions: {string.Join(",", batches)}");
    }

    [Fact]
    public async Task Should_bring_a_lead_to_the_stage_its_events_lead_to_in_whatever_order_the_bus_hands_them_over()
    {
        // Every type on one consumer, delivered concurrently: a batch decides them in the order they happened (the
        // storage suite checks that), and one that a later batch brings is decided late with the history; either way the
        // lead ends where its events lead.
        NurtureMessage[] events =
        [
            Captured("bus-3"), Did("bus-3", ActivityType.TrialStarted, 1), Did("bus-3", ActivityType.DemoRequested, 2),
            new LeadAcceptedBySales { EventId = Id(), LeadId = "bus-3", OccurredAt = Now.AddMinutes(3) },
        ];
        foreach (var e in events) await _bus.Publish(e, e.GetType());

        await Eventually.Until(() => Count("SELECT COUNT(*) FROM lead_events WHERE lead_id = 'bus-3'"), n => n == events.Length, what: "the four events stored");
        Assert.Equal(LeadStage.Sal, (await _provider.GetRequiredService<LeadStore>().LoadLeadAsync("bus-3"))!.Lead.Stage);
        Assert.Equal(2, await Count("SELECT COUNT(*) FROM stage_transitions WHERE lead_id = 'bus-3'"));
    }

    [Fact]
    public async Task Should_keep_an_event_over_a_size_limit_in_the_rejected_table_and_send_it_to_the_error_queue()
    {
        var tooLong = Captured("bus-4", email: new string('a', 300) + "@example.com");
        await _bus.Publish(tooLong);
        await _bus.Publish(Captured("bus-5"));

        await Eventually.Until(() => Count("SELECT COUNT(*) FROM leads WHERE lead_id = 'bus-5'"), n => n == 1, what: "the next event stored");
        // Each event is consumed on its own: the refused one may be recorded just after the good one is stored.
        await Eventually.Until(() => Task.FromResult(_traffic.Sent.Count(x => x is (LeadCaptured { LeadId: "bus-4" }, _))), n => n == 1, what: "the refused event sent on");
        await using var connection = await _database.OpenAsync();
        var reason = await connection.QuerySingleAsync<string>("SELECT reason FROM rejected_events");
        Assert.StartsWith("email:", reason, StringComparison.Ordinal);
        Assert.Equal(0, await Count("SELECT COUNT(*) FROM leads WHERE lead_id = 'bus-4'"));
        Assert.Contains(_traffic.Sent, x => x is (LeadCaptured { LeadId: "bus-4" }, var to) && to.AbsolutePath.EndsWith("_error", StringComparison.Ordinal));
        Assert.Equal(1, Counter("nurture.events.rejected"));
    }

    [Fact]
    public async Task Should_store_spend_and_every_lead_event_type_through_its_consumer()
    {
        var leadId = "bus-6";
        NurtureMessage[] events =
        [
            Captured(leadId), Did(leadId, ActivityType.TrialStarted, 1), Did(leadId, ActivityType.DemoRequested, 2),
            new LeadAcceptedBySales { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(3) },
            new LeadQualifiedBySales { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(4) },
            new DealLost { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(5), Reason = "price" },
            new LeadRejectedBySales { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(6), Reason = "timing" },
            new DealWon { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(7), Revenue = 500, Currency = "EUR" },
            new LeadDisqualified { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(8), Reason = "test" },
            new EmailBounced { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(9), Kind = BounceKind.Soft },
            new LeadUnsubscribed { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(10) },
            new LeadErased { EventId = Id(), LeadId = leadId, OccurredAt = Now.AddMinutes(11) },
            new CampaignSpendRecorded { EventId = Id(), OccurredAt = Now, Channel = "webinar", Amount = 1000, Currency = "EUR", PeriodStart = new DateOnly(2026, 3, 1), PeriodEnd = new DateOnly(2026, 3, 31) },
        ];
        foreach (var e in events) await _bus.Publish(e, e.GetType());

        await Eventually.Until(() => Count("SELECT COUNT(*) FROM lead_events"), n => n == events.Length, what: "every event stored");
        Assert.Equal(events.Select(e => e.GetType()).Distinct().Count(), await Count("SELECT COUNT(DISTINCT type) FROM lead_events"));
        var lead = (await _provider.GetRequiredService<LeadStore>().LoadLeadAsync(leadId))!.Lead;
        Assert.Equal(LeadStage.Customer, lead.Stage);
        Assert.True(lead.Erased && lead.Unsubscribed);
        Assert.Equal(1, await Count("SELECT COUNT(*) FROM spend"));
        Assert.Equal(1, await Count("SELECT COUNT(*) FROM deals"));
    }
}

/// <summary>What a bus published and sent, seen through MassTransit's own observers.</summary>
public sealed class BusTraffic : IPublishObserver, ISendObserver
{
    private readonly List<(object Message, Guid? MessageId)> _published = [];
    private readonly List<(object Message, Uri To)> _sent = [];

    /// <summary>Each published message with its message id.</summary>
    public IReadOnlyList<(object Message, Guid? MessageId)> Published
    {
        get
        {
            lock (_published) return [.. _published];
        }
    }

    public IReadOnlyList<(object Message, Uri To)> Sent
    {
        get
        {
            lock (_sent) return [.. _sent];
        }
    }

    public Task PostPublish<T>(PublishContext<T> context)
        where T : class
    {
        lock (_published) _published.Add((context.Message, context.MessageId));
        return Task.CompletedTask;
    }

    public Task PrePublish<T>(PublishContext<T> context) where T : class => Task.CompletedTask;

    public Task PublishFault<T>(PublishContext<T> context, Exception exception) where T : class => Task.CompletedTask;

    public Task PostSend<T>(SendContext<T> context)
        where T : class
    {
        lock (_sent) _sent.Add((context.Message, context.DestinationAddress!));
        return Task.CompletedTask;
    }

    public Task PreSend<T>(SendContext<T> context) where T : class => Task.CompletedTask;

    public Task SendFault<T>(SendContext<T> context, Exception exception) where T : class => Task.CompletedTask;
}

/// <summary>The plain-JSON reader that publishers which are not .NET rely on.</summary>
public class When_plain_json_is_read
{
    private const string Good = """{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","leadId":"p-1","occurredAt":"2026-03-02T09:00:00Z","email":"a@b.example","source":"webinar","consent":true}""";

    [Theory]
    [InlineData("""{"type":"LeadCaptured","eventId":""", "$")]
    [InlineData("""{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","occurredAt":"2026-03-02T09:00:00Z","email":"a@b.example","source":"webinar","consent":true}""", "leadId")]
    [InlineData("""{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","leadId":"p-1","occurredAt":"2026-03-02T09:00:00Z","email":"a@b.example","source":"webinar","consent":true,"companySize":"big"}""", "companySize")]
    [InlineData("""{"type":"LeadTeleported","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","leadId":"p-1"}""", "type")]
    [InlineData("""[1,2]""", "$")]
    [InlineData("""{"type":"LeadScored","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","leadId":"p-1","occurredAt":"2026-03-02T09:00:00Z","score":10,"behaviour":10,"fit":0,"definitionVersion":"x","explanation":[]}""", "type: 'LeadScored' is an event Nurture publishes")]
    public void Should_name_the_field_and_the_reason(string json, string field)
    {
        var read = PlainJsonEvents.Read(Encoding.UTF8.GetBytes(json));

        var unreadable = Assert.IsType<UnreadableEvent>(read);
        Assert.StartsWith(field, unreadable.Reason, StringComparison.Ordinal);
        Assert.Equal(json, unreadable.Payload);
    }

    [Fact]
    public void Should_name_a_field_over_its_size_limit()
    {
        var json = Good.Replace("\"p-1\"", $"\"{new string('x', 200)}\"", StringComparison.Ordinal);

        var unreadable = Assert.IsType<UnreadableEvent>(PlainJsonEvents.Read(Encoding.UTF8.GetBytes(json)));

        Assert.StartsWith("leadId:", unreadable.Reason, StringComparison.Ordinal);
        Assert.Contains("128", unreadable.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_refuse_bytes_that_are_not_utf8()
    {
        var unreadable = Assert.IsType<UnreadableEvent>(PlainJsonEvents.Read([0x7B, 0xFF, 0xFE, 0x7D]));
        Assert.Contains("UTF-8", unreadable.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_offer_the_event_only_as_its_own_type_and_its_bases()
    {
        var context = new PlainJsonEvents().Deserialize(new BytesMessageBody(Encoding.UTF8.GetBytes(Good)), EmptyHeaders.Instance);

        Assert.True(context.TryGetMessage<LeadCaptured>(out var captured));
        Assert.Equal("p-1", captured!.LeadId);
        Assert.True(context.TryGetMessage<LeadEvent>(out _));
        Assert.False(context.TryGetMessage<LeadActivityRecorded>(out _));
        Assert.False(context.TryGetMessage<UnreadableEvent>(out _));
        Assert.True(context.IsSupportedMessageType<LeadCaptured>());
        Assert.False(context.IsSupportedMessageType<DealWon>());
    }
}
