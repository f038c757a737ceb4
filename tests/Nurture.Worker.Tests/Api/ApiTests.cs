using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Nurture.Contracts;
using Nurture.Worker.Tests.Email;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Api;

/// <summary>The HTTP API over real HTTP: every kind of bad input gets its own 400; a valid batch goes all the way through.</summary>
public class When_publishers_post_events_over_http
{
    private const string Captured = """{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000001","leadId":"api-1","occurredAt":"2026-03-02T08:00:00Z","email":"anna@softwarehaus.example","firstName":"Anna","industry":"software","companySize":50,"country":"DE","timeZone":"Europe/Berlin","language":"de","source":"webinar","consent":true}""";
    private const string Trial = """{"type":"LeadActivityRecorded","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000002","leadId":"api-1","occurredAt":"2026-03-02T08:05:00Z","activity":"trialStarted"}""";
    private const string Demo = """{"type":"LeadActivityRecorded","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000003","leadId":"api-1","occurredAt":"2026-03-02T08:10:00Z","activity":"demoRequested"}""";

    private static StringContent Ndjson(params string[] lines) => new(string.Join("\n", lines) + "\n", Encoding.UTF8, "application/x-ndjson");

    private static async Task<List<(int Line, string Reason)>> Errors(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("errors").EnumerateArray().Select(e => (e.GetProperty("line").GetInt32(), e.GetProperty("reason").GetString()!)).ToList();
    }

    [Theory]
    [InlineData("""{"type":"LeadCaptured","eventId":""", "$")]
    [InlineData("""{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000009","leadId":"x","occurredAt":"2026-03-02T08:00:00Z","email":"a@b.example","source":"ads","consent":"yes"}""", "consent")]
    [InlineData("""{"type":"LeadCaptured","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000009","occurredAt":"2026-03-02T08:00:00Z","email":"a@b.example","source":"ads","consent":true}""", "leadId")]
    [InlineData("""{"type":"LeadActivityRecorded","leadId":"x","occurredAt":"2026-03-02T08:00:00Z","activity":"demoRequested"}""", "eventId")]
    [InlineData("""{"type":"LeadTeleported","eventId":"5f0c1c4e-1111-4a4a-9b9b-000000000009","leadId":"x"}""", "type")]
    public async Task Should_answer_bad_input_with_a_400_naming_the_field(string json, string field)
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();

        var errors = await Errors(await http.PostAsync("/api/events", new StringContent(json, Encoding.UTF8, "application/json")));

        var (line, reason) = Assert.Single(errors);
        Assert.Equal(1, line);
        Assert.StartsWith(field, reason, StringComparison.Ordinal);
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
    }

    [Fact]
    public async Task Should_record_posted_history_without_nurture_or_messages_and_refuse_an_unknown_mode()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();

        var bad = await http.PostAsync("/api/events?mode=backfill", Ndjson(Captured));
        var posted = await http.PostAsync("/api/events?mode=history", Ndjson(Captured, Trial, Demo));

        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("mode", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Accepted, posted.StatusCode);
        Assert.Equal(3, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM stage_transitions WHERE to_stage = 'Mql'"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM nurture_steps"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM outbox"));
    }

    [Fact]
    public async Task Should_store_the_good_lines_of_a_batch_and_name_the_bad_one_with_its_line()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();

        var errors = await Errors(await http.PostAsync("/api/events", Ndjson(Captured, Trial.Replace("trialStarted", "teleported", StringComparison.Ordinal), Demo)));

        var (line, reason) = Assert.Single(errors);
        Assert.Equal(2, line);
        Assert.StartsWith("activity", reason, StringComparison.Ordinal);
        Assert.Equal(2, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events WHERE event_id = '5f0c1c4e-1111-4a4a-9b9b-000000000002'"));
    }

    [Fact]
    public async Task Should_refuse_an_oversized_body_an_empty_one_and_a_missing_or_wrong_key()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();
        using var anonymous = new HttpClient { BaseAddress = http.BaseAddress };
        using var wrong = new HttpClient { BaseAddress = http.BaseAddress };
        wrong.DefaultRequestHeaders.Add("X-Api-Key", "not-the-key");

        var huge = Ndjson(Enumerable.Repeat(Captured, 2000).ToArray());
        var (_, tooLarge) = Assert.Single(await Errors(await http.PostAsync("/api/events", huge)));
        var (_, empty) = Assert.Single(await Errors(await http.PostAsync("/api/events", Ndjson())));
        var noKey = await anonymous.PostAsync("/api/events", Ndjson(Captured));
        var badKey = await wrong.PostAsync("/api/events", Ndjson(Captured));

        Assert.StartsWith("body: larger than 262144 bytes", tooLarge, StringComparison.Ordinal);
        Assert.StartsWith("body: empty", empty, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        Assert.Contains("X-Api-Key: missing", await noKey.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, badKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/leads/api-1")).StatusCode);
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
    }

    [Fact]
    public async Task Should_store_a_valid_batch_before_answering_and_show_the_lead_and_the_funnel()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();

        var response = await http.PostAsync("/api/events", Ndjson(Captured, Trial, Demo));
        var again = await http.PostAsync("/api/events", new StringContent(Demo, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        using var accepted = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, accepted.RootElement.GetProperty("accepted").GetArrayLength());
        using var duplicate = JsonDocument.Parse(await again.Content.ReadAsStringAsync());
        Assert.Equal("5f0c1c4e-1111-4a4a-9b9b-000000000003", duplicate.RootElement.GetProperty("duplicates")[0].GetString());
        Assert.Equal(3, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events")); // committed before the 202

        using var lead = JsonDocument.Parse(await http.GetStringAsync("/api/leads/api-1"));
        var root = lead.RootElement;
        Assert.Equal("mql", root.GetProperty("stage").GetString());
        Assert.True(root.GetProperty("score").GetProperty("total").GetDouble() >= 50);
        Assert.Contains(root.GetProperty("score").GetProperty("explanation").EnumerateArray(), l => l.GetProperty("rule").GetString()!.Contains("demoRequested", StringComparison.Ordinal));
        Assert.Equal(3, root.GetProperty("history").GetArrayLength());
        Assert.Equal("mql", root.GetProperty("transitions")[0].GetProperty("to").GetString());
        Assert.Equal(JsonValueKind.Array, root.GetProperty("transitions")[0].GetProperty("skipped").ValueKind); // the same shape as `replay`
        Assert.Equal("software-welcome", root.GetProperty("emails")[0].GetProperty("template").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/leads/nobody")).StatusCode);

        using var funnel = JsonDocument.Parse(await http.GetStringAsync("/api/funnel"));
        var mql = funnel.RootElement.GetProperty("funnel").EnumerateArray().Single(s => s.GetProperty("stage").GetString() == "mql");
        Assert.Equal(1, mql.GetProperty("reached").GetInt32());
        Assert.Equal(100m, funnel.RootElement.GetProperty("mqlValue").GetProperty("value").GetDecimal()); // the article's prior: 20 % × 500 €
    }
}
