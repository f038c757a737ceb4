using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dapper;
using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Storage;
using RabbitMQ.Client;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>
/// End to end against a real RabbitMQ: worker hosts as `dotnet run` builds them, events published the way a
/// pipeline that is not .NET publishes them (RabbitMQ.Client, plain JSON, no MassTransit) and the way a .NET one does.
/// Each test has its own queue and exchange, deleted afterwards.
/// </summary>
public sealed class When_workers_consume_from_rabbitmq(Broker broker) : IClassFixture<Broker>, IAsyncLifetime
{
    private readonly string _queue = $"nurture-test-{Guid.NewGuid():N}"[..24];
    private readonly List<WebApplication> _workers = [];
    private string Exchange => _queue.Replace('-', '.');

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var worker in _workers) await worker.DisposeAsync();
        if (broker.Amqp is null) return;
        await using var connection = await new ConnectionFactory { Uri = broker.Amqp }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        foreach (var queue in new[] { _queue, _queue + "_error", _queue + "_skipped" }) await channel.QueueDeleteAsync(queue);
        foreach (var exchange in new[] { Exchange, _queue, _queue + "_error", _queue + "_skipped" }) await channel.ExchangeDeleteAsync(exchange);
    }

    private async Task<WebApplication> StartWorker(Database database)
    {
        var worker = WorkerHost.Build(["--urls", "http://127.0.0.1:0"], c => c.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Nurture:Database:Provider"] = database.Provider.ToString(),
            ["ConnectionStrings:Nurture"] = database.ConnectionString,
            ["Nurture:Bus:Transport"] = "RabbitMq",
            ["ConnectionStrings:RabbitMq"] = broker.Require().ToString(),
            ["Nurture:Bus:Queue"] = _queue,
            ["Nurture:Bus:Exchange"] = Exchange,
            ["Nurture:Bus:OutboxPollMs"] = "100",
            // Workers that share a database server share their secrets too.
            ["Nurture:Email:UnsubscribeKey"] = "a shared unsubscribe key of at least 32 characters",
            ["Nurture:Api:Key"] = "a-shared-api-key-0123456789",
            ["Nurture:Email:PickupDirectory"] = Path.Combine(Path.GetTempPath(), _queue, "mail"),
        }));
        _workers.Add(worker);
        await worker.StartAsync();
        return worker;
    }

    /// <summary>Publishes plain JSON with RabbitMQ.Client, as a pipeline that is not .NET would, each confirmed by the broker.</summary>
    private async Task PublishPlain(IEnumerable<byte[]> bodies)
    {
        await using var connection = await new ConnectionFactory { Uri = broker.Require() }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        var properties = new BasicProperties { ContentType = "application/json", Persistent = true };
        foreach (var chunk in bodies.Chunk(200))
        {
            await Task.WhenAll(chunk.Select(body => channel.BasicPublishAsync(Exchange, "", mandatory: true, properties, body).AsTask()));
        }
    }

    private static byte[] Plain(NurtureMessage e) => Encoding.UTF8.GetBytes(EventJson.Write(e));

    [SkippableFact]
    public async Task Should_end_two_competing_workers_in_the_state_replay_gives_for_ten_thousand_events()
    {
        broker.Require();
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        var definition = DefaultDefinition.Create();
        var events = SampleLeads.Generate(2100, seed: 7, new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero), days: 120, definition).Take(10_000).ToList();
        Assert.Equal(10_000, events.Count);
        var random = new Random(11);
        // Out of order and with every 25th event sent twice: what at-least-once delivery looks like.
        var stream = events.Concat(events.Where((_, i) => i % 25 == 0)).OrderBy(_ => random.Next()).ToList();
        var a = await StartWorker(database);
        var b = await StartWorker(database);
        using var countsA = new MeterCounts(a.Services);
        using var countsB = new MeterCounts(b.Services);
        long Handled(MeterCounts c) => c["nurture.events.processed"] + c["nurture.events.duplicated"];

        await PublishPlain(stream.Select(Plain));

        await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM lead_events"), n => n == events.Count, TimeSpan.FromMinutes(10), "all 10,000 events stored");
        await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL"), n => n == 0, TimeSpan.FromMinutes(2), "the outbox published");
        await Eventually.Until(() => Task.FromResult(Handled(countsA) + Handled(countsB)), n => n >= stream.Count, what: "every delivery counted");
        Assert.True(Handled(countsA) > 0 && Handled(countsB) > 0, $"both workers took part (a: {Handled(countsA)}, b: {Handled(countsB)})");
        Assert.Equal(stream.Count, Handled(countsA) + Handled(countsB)); // every delivery handled once, duplicates included
        Assert.True(await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE outcome LIKE 'late%'") > 0, "some events arrived after newer ones of their lead");

        var replay = Replay.Run(events, definition);
        var now = events.Max(e => e.OccurredAt);
        await using var connection = await database.OpenAsync();
        var stored = (await connection.QueryAsync<string>("SELECT state FROM leads")).Select(LeadStore.ReadState).ToDictionary(l => l.Id);
        Assert.Equal(replay.Leads.Count, stored.Count);
        var differences = replay.Leads.Where(expected =>
        {
            // The worker's decay job (issue 5) re-scores; replay does it at the end. Do the same before comparing.
            var lead = Lifecycle.Rescore(stored[expected.LeadId], now, definition, Guid.Empty).Lead;
            return lead.Stage != expected.Stage || Scoring.Score(lead, now, definition).Total != expected.Score;
        }).Select(o => o.LeadId).ToList();
        Assert.True(differences.Count == 0, $"{differences.Count} leads differ from replay, e.g. {string.Join(", ", differences.Take(5))}");
        var funnel = await new LeadStore(database).ReadFunnelAsync();
        Assert.Equal(replay.Summary.Funnel.Select(f => (f.Stage, f.Reached)), funnel.Select(f => (f.Stage, f.Reached)));
    }

    [SkippableFact]
    public async Task Should_apply_once_an_event_sent_through_masstransit_and_again_as_plain_json()
    {
        broker.Require();
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        var worker = await StartWorker(database);
        using var counts = new MeterCounts(worker.Services);
        var captured = new LeadCaptured
        {
            EventId = Guid.NewGuid(), LeadId = "rd-1", OccurredAt = DateTimeOffset.UtcNow, Email = "rd@example.com", Source = "webinar", Consent = true,
        };

        // Once through MassTransit (a .NET publisher, the MassTransit envelope) and twice as plain JSON, as a redelivery would.
        await worker.Services.GetRequiredService<IBus>().Publish(captured);
        await Eventually.Until(() => Task.FromResult(counts["nurture.events.processed"]), n => n == 1, what: "the event applied");
        await PublishPlain([Plain(captured), Plain(captured)]);

        await Eventually.Until(() => Task.FromResult(counts["nurture.events.duplicated"]), n => n == 2, what: "both copies counted as duplicates");
        Assert.Equal(1, counts["nurture.events.processed"]);
        Assert.Equal(1, await database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE lead_id = 'rd-1'"));
        Assert.Equal(1, (await new LeadStore(database).LoadLeadAsync("rd-1"))!.Version);
    }

    [SkippableFact]
    public async Task Should_move_poison_messages_to_the_error_queue_with_their_reason_and_go_on_consuming()
    {
        broker.Require();
        var database = TestDatabase.Create(DatabaseProvider.Sqlite);
        var worker = await StartWorker(database);
        var malformed = Encoding.UTF8.GetBytes("""{"type":"LeadCaptured","eventId":"5f0c1c4e""");
        var noLead = Encoding.UTF8.GetBytes("""{"type":"LeadUnsubscribed","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000009","occurredAt":"2026-03-02T09:00:00Z"}""");
        var good = new LeadCaptured { EventId = Guid.NewGuid(), LeadId = "after-poison", OccurredAt = DateTimeOffset.UtcNow, Email = "p@example.com", Source = "ads", Consent = true };

        await PublishPlain([malformed, noLead, Plain(good)]);

        await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM leads WHERE lead_id = 'after-poison'"), n => n == 1, what: "the good event after the poison");
        var errors = (await ErrorQueue(2)).Select(e => (Body: Encoding.UTF8.GetString(e.Body), e.Reason)).ToList();
        var byBody = errors.ToDictionary(e => e.Body, e => e.Reason);
        Assert.StartsWith("$", byBody[Encoding.UTF8.GetString(malformed)], StringComparison.Ordinal);
        Assert.StartsWith("leadId", byBody[Encoding.UTF8.GetString(noLead)], StringComparison.Ordinal);
        await using var db = await database.OpenAsync();
        var rejected = (await db.QueryAsync<string>("SELECT reason FROM rejected_events ORDER BY id")).ToList();
        Assert.Equal(2, rejected.Count);
        Assert.Contains(rejected, r => r.StartsWith("leadId", StringComparison.Ordinal));

        // Ready means the broker and the database answer; live only that the process does.
        using var http = new HttpClient { BaseAddress = new Uri(worker.Urls.First()) };
        using var ready = await http.GetFromJsonAsync<JsonDocument>("/health/ready");
        Assert.Equal("Healthy", ready!.RootElement.GetProperty("status").GetString());
        var checks = ready.RootElement.GetProperty("checks");
        Assert.Equal("Healthy", checks.GetProperty("database").GetProperty("status").GetString());
        Assert.Equal("Healthy", checks.GetProperty("masstransit-bus").GetProperty("status").GetString());
        Assert.Equal("Healthy", checks.GetProperty("broker").GetProperty("status").GetString());
        Assert.True((await http.GetAsync("/health/live")).IsSuccessStatusCode);
    }

    /// <summary>
    /// Everything in the error queue until <paramref name="count"/> messages were read: the queue appears with its first
    /// message, so a queue that does not exist yet counts as empty, not as a failure.
    /// </summary>
    private async Task<List<(byte[] Body, string Reason)>> ErrorQueue(int count)
    {
        await using var connection = await new ConnectionFactory { Uri = broker.Require() }.CreateConnectionAsync();
        var errors = new List<(byte[] Body, string Reason)>();
        await Eventually.Until(async () =>
        {
            // Asking for a queue that does not exist yet closes the channel (404): Eventually takes that as "not yet".
            await using var channel = await connection.CreateChannelAsync();
            while (await channel.BasicGetAsync(_queue + "_error", autoAck: true) is { } got)
            {
                var header = got.BasicProperties.Headers?["MT-Fault-Message"];
                errors.Add((got.Body.ToArray(), header is byte[] bytes ? Encoding.UTF8.GetString(bytes) : header?.ToString() ?? ""));
            }
            return errors.Count;
        }, n => n >= count, TimeSpan.FromSeconds(60), $"{count} messages in the error queue");
        return errors;
    }

    [SkippableFact]
    public async Task Should_keep_a_rejected_row_for_every_message_in_the_error_queue_including_a_nul_byte_on_postgresql()
    {
        broker.Require();
        var database = TestDatabase.Create(DatabaseProvider.PostgreSql);
        await StartWorker(database);
        var nulByte = Encoding.UTF8.GetBytes("{\"type\":\"LeadCaptured\",\"leadId\":\"nul-1\",\"firstName\":\"An\0na\"}");
        var nulEscaped = Encoding.UTF8.GetBytes($$"""{"type":"LeadCaptured","eventId":"{{Guid.NewGuid()}}","leadId":"nul-2","occurredAt":"2026-03-02T09:00:00Z","email":"n@example.com","firstName":"An\u0000na","source":"ads","consent":true}""");
        var huge = Encoding.UTF8.GetBytes("{\"type\":\"LeadCaptured\",\"leadId\":\"huge-1\",\"company\":\"" + new string('x', 100_000) + "\"");
        var good = new LeadCaptured { EventId = Guid.NewGuid(), LeadId = "after-nul", OccurredAt = DateTimeOffset.UtcNow, Email = "p@example.com", Source = "ads", Consent = true };

        await PublishPlain([nulByte, nulEscaped, huge, Plain(good)]);

        var errors = await ErrorQueue(3);
        await Eventually.Until(() => database.CountAsync("SELECT COUNT(*) FROM leads WHERE lead_id = 'after-nul'"), n => n == 1, what: "the good event after the bad ones");
        await using var db = await database.OpenAsync();
        var rows = (await db.QueryAsync<(string Reason, string Payload, string LeadId, string Sha256, long Length)>(
            "SELECT reason, payload, lead_id, payload_sha256, payload_length FROM rejected_events")).ToList();
        Assert.Equal(3, errors.Count);
        Assert.All(errors, e => Assert.Contains(rows, r => r.Sha256 == Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(e.Body)) && r.Length == e.Body.Length));
        Assert.Contains(rows, r => r.LeadId == "nul-1" && r.Payload.Contains("An\\u0000na", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.LeadId == "nul-2" && r.Reason.StartsWith("firstName: holds a NUL character", StringComparison.Ordinal));
        var cut = Assert.Single(rows, r => r.LeadId == "huge-1");
        Assert.Equal(huge.Length, cut.Length);
        Assert.Equal(16 * 1024, Encoding.UTF8.GetByteCount(cut.Payload));
    }
}
