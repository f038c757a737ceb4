using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Nurture.Contracts;
using Nurture.Worker.Cli;
using Nurture.Worker.Tests.Email;
using Nurture.Worker.Tests.Messaging;
using Nurture.Worker.Webhooks;

namespace Nurture.Worker.Tests.Webhooks;

/// <summary>The hand-off posted to a real HTTP receiver by the Standard Webhooks specification, on the embedded default.</summary>
public class When_a_lead_becomes_an_MQL_and_a_CRM_subscribes
{
    private static readonly string Secret = "whsec_" + Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)(i * 7)).ToArray());

    private static Dictionary<string, string?> Subscription(int port) => new()
    {
        ["Nurture:Webhooks:Subscriptions:0:Name"] = "crm",
        ["Nurture:Webhooks:Subscriptions:0:Url"] = $"http://127.0.0.1:{port}/hooks",
        ["Nurture:Webhooks:Subscriptions:0:Events:0"] = "LeadStageChanged",
        ["Nurture:Webhooks:Subscriptions:0:Events:1"] = "LeadHandedToSales",
        ["Nurture:Webhooks:Subscriptions:0:Secret"] = Secret,
        ["Nurture:Webhooks:PollSeconds"] = "1",
    };

    private static Task<IReadOnlyList<Nurture.Worker.Leads.AppliedEvent>> QualifyAsync(MailRig rig, string leadId) => rig.Apply(
        MailRig.Captured(leadId, MailRig.Monday, $"{leadId}@softwarehaus.example"),
        new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = MailRig.Monday, Activity = ActivityType.DemoRequested },
        new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = MailRig.Monday, Activity = ActivityType.PricingPageViewed });

    /// <summary>The specification's verification, written here from the spec rather than taken from the worker.</summary>
    private static bool SignatureIsValid(ReceivedWebhook hook)
    {
        var key = Convert.FromBase64String(Secret["whsec_".Length..]);
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{hook.Id}.{hook.Timestamp}.{hook.Body}")));
        return hook.Signature.Split(' ').Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), Encoding.ASCII.GetBytes(expected)));
    }

    private static async Task<JsonElement> DeliveriesAsync(MailRig rig)
    {
        using var http = rig.Http();
        return await http.GetFromJsonAsync<JsonElement>("/api/webhooks/deliveries");
    }

    /// <summary>Attempts of the delivery of that type; -1 while the deliverer has not read it from the outbox yet.</summary>
    private static int Attempts(JsonElement log, string type) =>
        log.GetProperty("deliveries").EnumerateArray().Where(d => d.GetProperty("type").GetString() == type).Select(d => d.GetProperty("attempts").GetInt32()).DefaultIfEmpty(-1).Single();

    [Fact]
    public async Task Should_post_the_hand_off_signed_by_the_Standard_Webhooks_specification()
    {
        var port = WebhookReceiver.FreePort();
        await using var receiver = await WebhookReceiver.StartAsync(port);
        await using var rig = await MailRig.StartAsync(more: Subscription(port));

        await QualifyAsync(rig, "hook-1");

        await Eventually.Until(() => Task.FromResult(receiver.Received.Count), n => n >= 2, what: "two webhooks");
        var hooks = receiver.Received.ToList();
        Assert.Equal(2, hooks.Count); // LeadScored and the other messages were not asked for
        Assert.All(hooks, h => Assert.True(SignatureIsValid(h), $"signature of {h.Id} does not verify"));
        Assert.All(hooks, h => Assert.Matches("^msg_[0-9a-f]{32}$", h.Id));
        using var stageChanged = JsonDocument.Parse(hooks[0].Body);
        using var handedOver = JsonDocument.Parse(hooks[1].Body);
        Assert.Equal("LeadStageChanged", stageChanged.RootElement.GetProperty("type").GetString()); // in order for the lead
        Assert.Equal("LeadHandedToSales", handedOver.RootElement.GetProperty("type").GetString());
        Assert.Equal("hook-1", handedOver.RootElement.GetProperty("data").GetProperty("leadId").GetString());
        Assert.True(handedOver.RootElement.GetProperty("data").GetProperty("score").GetDouble() >= 50);
        var tampered = hooks[1] with { Body = hooks[1].Body.Replace("hook-1", "hook-2", StringComparison.Ordinal) };
        Assert.False(SignatureIsValid(tampered));
    }

    [Fact]
    public async Task Should_keep_retrying_while_the_receiver_is_down_for_an_hour_and_deliver_everything_in_order_once_it_is_back()
    {
        using var down = WebhookReceiver.ReserveRefusingPort(); // nothing listens here yet, and nothing else may
        var port = ((System.Net.IPEndPoint)down.LocalEndPoint!).Port;
        await using var rig = await MailRig.StartAsync(more: Subscription(port));
        await QualifyAsync(rig, "hook-down");
        await Eventually.Until(() => DeliveriesAsync(rig), log => Attempts(log, "LeadStageChanged") >= 1, what: "the first attempt");

        // An hour (and more) of the receiver being down, in the worker's time: every retry fails, nothing is given up.
        for (var waited = TimeSpan.Zero; waited <= TimeSpan.FromHours(1); waited += TimeSpan.FromMinutes(10))
        {
            var before = Attempts(await DeliveriesAsync(rig), "LeadStageChanged");
            rig.Clock.Advance(TimeSpan.FromMinutes(10)); // the longest wait between retries (RetryMaxSeconds)
            await Eventually.Until(() => DeliveriesAsync(rig), log => Attempts(log, "LeadStageChanged") > before, what: "another attempt");
        }
        var whileDown = await DeliveriesAsync(rig);
        Assert.True(Attempts(whileDown, "LeadStageChanged") >= 7);
        Assert.Equal(0, Attempts(whileDown, "LeadHandedToSales")); // behind the lead's earlier message, in order
        Assert.All(whileDown.GetProperty("deliveries").EnumerateArray(), d => Assert.NotEqual("given_up", d.GetProperty("status").GetString()));
        using (var http = rig.Http())
        {
            // The gauge is read from the database on the metrics refresh, not at the scrape: wait for the refresh.
            const string retrying = "nurture_webhook_deliveries{otel_scope_name=\"Nurture\",status=\"retrying\"} 1";
            await Eventually.Until(async () => (await http.GetStringAsync("/metrics")).Replace("otel_scope_version=\"\",", "", StringComparison.Ordinal),
                metrics => metrics.Contains(retrying, StringComparison.Ordinal), TimeSpan.FromSeconds(60), "the retrying delivery in /metrics");
        }

        down.Dispose();
        await using var receiver = await WebhookReceiver.StartAsync(port);
        rig.Clock.Advance(TimeSpan.FromMinutes(10));

        await Eventually.Until(() => Task.FromResult(receiver.Received.Count), n => n >= 2, what: "both webhooks after the receiver came back");
        var hooks = receiver.Received.ToList();
        Assert.Equal(["LeadStageChanged", "LeadHandedToSales"], hooks.Select(h => JsonDocument.Parse(h.Body).RootElement.GetProperty("type").GetString()));
        Assert.All(hooks, h => Assert.True(SignatureIsValid(h)));
        var log = await Eventually.Until(() => DeliveriesAsync(rig), l => l.GetProperty("counts").TryGetProperty("delivered", out var n) && n.GetInt32() == 2, what: "both delivered in the log");
        Assert.All(log.GetProperty("deliveries").EnumerateArray(), d => Assert.Equal(204, d.GetProperty("lastStatusCode").GetInt32()));
    }

    [Fact]
    public async Task Should_answer_the_delivery_log_only_with_the_API_key()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(rig.App.Urls.First()) };

        using var response = await http.GetAsync("/api/webhooks/deliveries");

        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData("Secret", "", "Nurture:Webhooks:Subscriptions:0:Secret: required")]
    [InlineData("Secret", "c2VjcmV0", "Nurture:Webhooks:Subscriptions:0:Secret: must start with 'whsec_'")]
    [InlineData("Secret", "whsec_c2VjcmV0", "Nurture:Webhooks:Subscriptions:0:Secret: 6 bytes after 'whsec_'")]
    [InlineData("Url", "ftp://crm.example/hooks", "Nurture:Webhooks:Subscriptions:0:Url: 'ftp://crm.example/hooks' is not an http(s) URL.")]
    [InlineData("Events:1", "LeadCaptured", "Nurture:Webhooks:Subscriptions:0:Events:1: 'LeadCaptured' is not an outgoing event")]
    [InlineData("Name", "two words", "Nurture:Webhooks:Subscriptions:0:Name: 'two words' must be")]
    public void Should_name_the_subscription_setting_that_cannot_work(string key, string value, string message)
    {
        var settings = Subscription(8080);
        settings[$"Nurture:Webhooks:Subscriptions:0:{key}"] = value;

        var error = Assert.Throws<SettingsException>(() => WebhookSettings.Load(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()));

        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }
}
