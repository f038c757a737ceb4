using Microsoft.Extensions.Logging.Abstractions;
using Nurture.Contracts;
using Nurture.Worker.Messaging;
using RabbitMQ.Client;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>The outbox relay's own publishing connection, against the real broker: where it publishes, and a replacement.</summary>
public sealed class When_the_outbox_publishes_over_its_own_connection(Broker broker) : IClassFixture<Broker>
{
    [SkippableFact]
    public async Task Should_publish_to_the_exchange_of_the_message_type_and_go_on_over_a_new_connection_after_a_replace()
    {
        var uri = broker.Require();
        // A queue of the test's own on the exchange MassTransit names after the type, as subscribers bind theirs.
        await using var connection = await new ConnectionFactory { Uri = uri }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        const string Exchange = "Nurture.Contracts:NurtureEmailSent";
        await channel.ExchangeDeclareAsync(Exchange, ExchangeType.Fanout, durable: true);
        var queue = (await channel.QueueDeclareAsync()).QueueName;
        await channel.QueueBindAsync(queue, Exchange, "");
        await using var publisher = new OutboxPublisher(new BusSettings { Transport = BusTransport.RabbitMq, RabbitMq = uri }, NullLogger<OutboxPublisher>.Instance);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(1));

        var first = await publisher.BusAsync(cancel.Token);
        Assert.Same(first, await publisher.BusAsync(cancel.Token));
        await first.Publish(Sent("<first@nurture>"), cancel.Token);
        publisher.Replace();
        var second = await publisher.BusAsync(cancel.Token);
        await second.Publish(Sent("<second@nurture>"), cancel.Token);

        Assert.NotSame(first, second);
        var bodies = new List<string>();
        await Eventually.Until(async () =>
        {
            if (await channel.BasicGetAsync(queue, autoAck: true) is { } got) bodies.Add(System.Text.Encoding.UTF8.GetString(got.Body.Span));
            return bodies.Count;
        }, n => n == 2, TimeSpan.FromSeconds(20), "both messages in the queue");
        Assert.Contains(bodies, b => b.Contains("<first@nurture>", StringComparison.Ordinal));
        Assert.Contains(bodies, b => b.Contains("<second@nurture>", StringComparison.Ordinal));
    }

    private static NurtureEmailSent Sent(string messageId) => new()
    {
        EventId = Guid.NewGuid(), LeadId = "publisher-lead", OccurredAt = DateTimeOffset.UtcNow,
        Track = "software", Step = 0, Template = "software-welcome", MessageId = messageId,
    };
}
