using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Worker.Email;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Email;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Api;

/// <summary>
/// Bad input over real HTTP, per provider: each bad line named (line and field) in problem details without the
/// database's own words, and the good lines of the same request stored.
/// </summary>
public abstract class BadInputSuite(DatabaseProvider provider)
{
    private int _ids;

    private string Line(string type, string leadId, string fields) =>
        $$"""{"type":"{{type}}","eventId":"{{Guid.NewGuid()}}","leadId":"{{leadId}}","occurredAt":"2026-03-01T{{10 + ++_ids % 10}}:{{_ids % 60:00}}:00Z"{{fields}}}""";

    private string Captured(string leadId, string firstName = "Anna") =>
        Line("LeadCaptured", leadId, $$""","email":"{{leadId}}@softwarehaus.example","firstName":"{{firstName}}","industry":"software","source":"webinar","consent":true""");

    private async Task<MailRig> StartAsync(Dictionary<string, string?>? more = null)
    {
        more ??= [];
        if (provider != DatabaseProvider.Sqlite)
        {
            more["Nurture:Database:Provider"] = provider.ToString();
            more["ConnectionStrings:Nurture"] = TestDatabase.Create(provider).ConnectionString;
            more["Nurture:Email:UnsubscribeKey"] = "bad-input-test-unsubscribe-key-0123456789";
        }
        return await MailRig.StartAsync(more: more);
    }

    [SkippableFact]
    public async Task Should_store_the_good_lines_and_name_each_refused_line_and_field_without_the_databases_words()
    {
        await using var rig = await StartAsync();
        using var http = rig.Http();
        var lines = new List<string>();
        for (var i = 1; i <= 10; i++) lines.Add(Captured($"good-{i}"));
        lines.Insert(2, Captured("nul-1", "An\\u0000na"));                                           // line 3
        lines.Insert(6, Line("DealWon", "good-1", ""","revenue":1e17,"currency":"EUR" """.TrimEnd())); // line 7
        // Two deals the reader takes, whose sum the lead's revenue column cannot keep: PostgreSQL refuses the second.
        lines.Add(Line("DealWon", "rich-1", ""","revenue":9000000000000000,"currency":"EUR" """.TrimEnd())); // line 13
        lines.Add(Line("DealWon", "rich-1", ""","revenue":9000000000000000,"currency":"EUR" """.TrimEnd())); // line 14

        var response = await http.PostAsync("/api/events", new StringContent(string.Join("\n", lines) + "\n", Encoding.UTF8, "application/x-ndjson"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        var errors = json.RootElement.GetProperty("errors").EnumerateArray()
            .Select(e => (Line: e.GetProperty("line").GetInt32(), Field: e.GetProperty("field").GetString(), Reason: e.GetProperty("reason").GetString()!)).ToList();
        var refusedBySum = provider == DatabaseProvider.PostgreSql;
        Assert.Equal(refusedBySum ? [3, 7, 14] : [3, 7], errors.Select(e => e.Line));
        Assert.Equal("firstName", errors[0].Field);
        Assert.Equal("revenue", errors[1].Field);
        Assert.DoesNotContain("22003", errors[1].Reason, StringComparison.Ordinal);
        if (refusedBySum) Assert.StartsWith("$: the database refused it: a number is out of the range", errors[2].Reason, StringComparison.Ordinal);
        foreach (var providerWords in new[] { "Npgsql", "PostgreSQL", "SQLite Error", "numeric field overflow", "invalid byte sequence", "0x00" })
        {
            Assert.DoesNotContain(providerWords, text, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(lines.Count - errors.Count, json.RootElement.GetProperty("accepted").GetArrayLength());
        Assert.Equal(lines.Count - errors.Count, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM leads WHERE lead_id = 'nul-1'"));

        // The same request again: the stored lines are duplicates, the bad ones named again.
        var again = await http.PostAsync("/api/events", new StringContent(string.Join("\n", lines) + "\n", Encoding.UTF8, "application/x-ndjson"));
        using var againJson = JsonDocument.Parse(await again.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.Equal(errors.Count, againJson.RootElement.GetProperty("errors").GetArrayLength());
        Assert.Equal(lines.Count - errors.Count, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
    }
}

public class Sqlite_bad_input() : BadInputSuite(DatabaseProvider.Sqlite);

public class PostgreSql_bad_input() : BadInputSuite(DatabaseProvider.PostgreSql);

/// <summary>Answers that stay small and links that create nothing, whatever comes in.</summary>
public class When_input_is_large_or_about_nobody
{
    [Fact]
    public async Task Should_answer_a_million_empty_objects_with_a_short_list_and_a_count_of_the_rest()
    {
        await using var rig = await MailRig.StartAsync(more: new Dictionary<string, string?> { ["Nurture:Api:MaxBodyBytes"] = "4194304" });
        using var http = rig.Http();
        var body = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{}\n", 1_000_000)));

        var response = await http.PostAsync("/api/events", new ByteArrayContent(body) { Headers = { ContentType = new("application/x-ndjson") } });
        var answer = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(3_000_000, body.Length);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(answer.Length < 32 * 1024, $"the answer is {answer.Length} bytes");
        using var json = JsonDocument.Parse(answer);
        Assert.Equal(100, json.RootElement.GetProperty("errors").GetArrayLength());
        Assert.Equal(999_900, json.RootElement.GetProperty("errorsNotListed").GetInt32());
        Assert.Equal(100, json.RootElement.GetProperty("errors")[99].GetProperty("line").GetInt32());
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
    }

    [Fact]
    public async Task Should_answer_a_signed_unsubscribe_link_for_an_unknown_lead_politely_and_create_nothing()
    {
        await using var rig = await MailRig.StartAsync();
        using var http = rig.Http();
        var token = rig.App.Services.GetRequiredService<UnsubscribeTokens>().Create("never-seen-1");
        var funnel = await http.GetStringAsync("/api/funnel");

        var response = await http.PostAsync($"/unsubscribe/{token}", new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("You are unsubscribed", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM leads"));
        Assert.Equal(0, await rig.Database.CountAsync("SELECT COUNT(*) FROM lead_events"));
        Assert.Equal(funnel, await http.GetStringAsync("/api/funnel"));
    }
}
