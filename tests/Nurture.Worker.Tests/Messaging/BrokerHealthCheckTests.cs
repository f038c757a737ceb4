using Microsoft.Extensions.Diagnostics.HealthChecks;
using Nurture.Worker.Messaging;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>The worker's own readiness check of RabbitMQ, against the real broker and against a port nothing listens on.</summary>
public sealed class When_the_broker_check_asks_rabbitmq(Broker broker) : IClassFixture<Broker>
{
    [SkippableTheory]
    [InlineData("amqp")]
    [InlineData("rabbitmq")]
    public async Task Should_say_healthy_for_a_broker_that_answers_whichever_scheme_masstransit_was_given(string scheme)
    {
        var uri = new UriBuilder(broker.Require()) { Scheme = scheme }.Uri;
        await using var check = new BrokerHealthCheck(new BusSettings { Transport = BusTransport.RabbitMq, RabbitMq = uri });

        var result = await check.CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.True(await check.AnswersAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Should_say_unhealthy_naming_the_host_but_never_the_password_when_nothing_answers()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var check = new BrokerHealthCheck(new BusSettings
        {
            Transport = BusTransport.RabbitMq, RabbitMq = new Uri($"amqp://nurture:s3cret-password@127.0.0.1:{port}/"),
        });

        var result = await check.CheckHealthAsync(new HealthCheckContext());

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains($"127.0.0.1:{port}", result.Description, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", result.Description, StringComparison.Ordinal);
        Assert.False(await check.AnswersAsync(CancellationToken.None));
    }
}
