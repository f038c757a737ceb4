using System.Data.Common;
using System.Net;
using System.Text;
using System.Text.Json;
using Dapper;
using Nurture.Contracts;
using Nurture.Worker.Storage;
using Nurture.Worker.Tests.Email;

namespace Nurture.Worker.Tests.Storage;

/// <summary>
/// Erase means erased: a lead whose every free text carries a marker, written through the real HTTP API, erased, then
/// fed more events (a capture, a late activity, reasons); the marker is then looked for in every column of every table
/// the database's catalog lists and in every API answer. Another lead's marker stays (the search can find one), and the
/// funnel and the row counts are what they were before the erase.
/// </summary>
public abstract class ErasureSuite(DatabaseProvider provider)
{
    private static readonly DateTimeOffset At = MailRig.Monday.AddDays(-2);
    private readonly string _marker = "mk" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _kept = "kp" + Guid.NewGuid().ToString("N")[..12];
    private int _ids;

    private static string Id() => Guid.NewGuid().ToString();

    private string Event(string type, string leadId, DateTimeOffset at, string fields) =>
        $$"""{"type":"{{type}}","eventId":"{{Id()}}","leadId":"{{leadId}}","occurredAt":"{{at.AddMinutes(++_ids):yyyy-MM-ddTHH:mm:ssZ}}"{{fields}}}""";

    /// <summary>Every incoming event type, with the marker in each of its free-text fields (and in a property's key).</summary>
    private List<string> Story(string leadId, string m) =>
    [
        Event("LeadCaptured", leadId, At, $$""","email":"{{m}}.anna@{{m}}-haus.example","firstName":"Anna {{m}}","lastName":"Schmidt {{m}}","company":"{{m}} GmbH","role":"Head of IT {{m}}","industry":"software","companySize":50,"country":"DE","timeZone":"Europe/Berlin","language":"de","source":"webinar","consent":true"""),
        Event("LeadActivityRecorded", leadId, At, $$""","activity":"trialStarted","properties":{"asset":"{{m}}-guide.pdf","{{m}}":"x"}"""),
        Event("LeadActivityRecorded", leadId, At, $$""","activity":"demoRequested","properties":{"page":"https://example.com/{{m}}"}"""),
        Event("LeadAcceptedBySales", leadId, At, $$""","salesRep":"Rep {{m}}" """.TrimEnd()),
        Event("LeadRejectedBySales", leadId, At, $$""","reason":"{{m}} has no budget" """.TrimEnd()),
        Event("LeadQualifiedBySales", leadId, At, $$""","salesRep":"Rep {{m}}" """.TrimEnd()),
        Event("DealLost", leadId, At, $$""","reason":"went with {{m}} competitor" """.TrimEnd()),
        Event("EmailBounced", leadId, At, $$""","kind":"soft","reason":"452 4.2.2 {{m}}.anna@{{m}}-haus.example over quota" """.TrimEnd()),
        Event("LeadUnsubscribed", leadId, At, $$""","channel":"preference-center {{m}}" """.TrimEnd()),
        Event("LeadDisqualified", leadId, At, $$""","reason":"{{m}} is a student" """.TrimEnd()),
        Event("DealWon", leadId, At, ""","revenue":1200,"currency":"EUR" """.TrimEnd()),
    ];

    [SkippableFact]
    public async Task Should_leave_the_marker_in_no_table_and_no_api_answer_after_an_erase_and_keep_the_counts()
    {
        await using var rig = await StartAsync();
        using var http = rig.Http();
        await Post(http, Story("erase-1", _marker));
        await Post(http, Story("keep-1", _kept));
        // A message about the lead the bus could not take (the consumer records it so).
        await rig.Store.RecordRejectedAsync("bus", $"firstName: 'Anna {_marker}' is refused", $$"""{"type":"LeadCaptured","leadId":"erase-1","firstName":"Anna {{_marker}}" """, DateTimeOffset.UtcNow);
        var before = await Found(rig, http, _marker);
        Assert.Contains("lead_events", before);
        Assert.Contains("leads", before);
        Assert.Contains("stage_transitions", before);
        Assert.Contains("outbox", before);
        Assert.Contains("rejected_events", before);
        Assert.Contains("GET /api/leads/erase-1", before);
        var funnel = await http.GetStringAsync("/api/funnel");
        var counts = await Counts(rig);

        await Post(http, [Event("LeadErased", "erase-1", At.AddDays(1), "")]);
        // After the erase: a capture again, a late activity (before the erase), reasons, a bounce and a rejected message.
        await Post(http,
        [
            Event("LeadCaptured", "erase-1", At.AddDays(2), $$""","email":"{{_marker}}@again.example","firstName":"{{_marker}}","source":"webinar","consent":true"""),
            Event("LeadActivityRecorded", "erase-1", At.AddHours(12), $$""","activity":"pricingPageViewed","properties":{"page":"{{_marker}}"}"""),
            Event("LeadRejectedBySales", "erase-1", At.AddDays(2), $$""","reason":"{{_marker}} again" """.TrimEnd()),
            Event("EmailBounced", "erase-1", At.AddDays(2), $$""","kind":"hard","reason":"550 5.1.1 <{{_marker}}@again.example> unknown" """.TrimEnd()),
        ]);
        await rig.Store.RecordRejectedAsync("bus", $"firstName: '{_marker}'", $$"""{"type":"LeadCaptured","leadId":"erase-1","firstName":"{{_marker}}"}""", DateTimeOffset.UtcNow);

        Assert.Empty(await Found(rig, http, _marker));
        Assert.Contains("GET /api/leads/keep-1", await Found(rig, http, _kept));
        Assert.Contains("stage_transitions", await Found(rig, http, _kept));
        var after = await Counts(rig);
        Assert.Equal(counts.Where(c => c.Key is not ("lead_events" or "outbox" or "rejected_events" or "suppressions")), after.Where(c => c.Key is not ("lead_events" or "outbox" or "rejected_events" or "suppressions")));
        Assert.Equal(funnel, await http.GetStringAsync("/api/funnel"));
        using var lead = JsonDocument.Parse(await http.GetStringAsync("/api/leads/erase-1"));
        Assert.True(lead.RootElement.GetProperty("erased").GetBoolean());
        Assert.Contains(lead.RootElement.GetProperty("transitions").EnumerateArray(), t => t.GetProperty("reason").GetString() == "rejected by sales: erased");
    }

    private async Task<MailRig> StartAsync()
    {
        if (provider == DatabaseProvider.Sqlite) return await MailRig.StartAsync();
        var database = TestDatabase.Create(provider);
        return await MailRig.StartAsync(more: new Dictionary<string, string?>
        {
            ["Nurture:Database:Provider"] = provider.ToString(),
            ["ConnectionStrings:Nurture"] = database.ConnectionString,
            ["Nurture:Email:UnsubscribeKey"] = "erasure-test-unsubscribe-key-0123456789",
        });
    }

    private static async Task Post(HttpClient http, IEnumerable<string> lines)
    {
        using var content = new StringContent(string.Join("\n", lines) + "\n", Encoding.UTF8, "application/x-ndjson");
        var response = await http.PostAsync("/api/events", content);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Where the text occurs: every table of the catalog (each column as text) and every API answer about leads and counts.</summary>
    private static async Task<List<string>> Found(MailRig rig, HttpClient http, string text)
    {
        var found = new List<string>();
        await using var connection = await rig.Database.OpenAsync();
        foreach (var table in await Tables(connection, rig.Database.Provider))
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"SELECT * FROM {table}";
            await using var reader = await command.ExecuteReaderAsync();
            var hit = false;
            while (!hit && await reader.ReadAsync())
            {
                for (var i = 0; i < reader.FieldCount && !hit; i++)
                {
                    hit = !await reader.IsDBNullAsync(i) && Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!.Contains(text, StringComparison.OrdinalIgnoreCase);
                }
            }
            if (hit) found.Add(table);
        }
        foreach (var path in new[] { "/api/leads/erase-1", "/api/leads/keep-1", "/api/funnel", "/api/webhooks/deliveries", "/metrics", "/health/ready" })
        {
            using var response = await http.GetAsync(path);
            var answer = await response.Content.ReadAsStringAsync();
            if (answer.Contains(text, StringComparison.OrdinalIgnoreCase)) found.Add("GET " + path);
        }
        return found;
    }

    private static async Task<List<string>> Tables(DbConnection connection, DatabaseProvider provider) => (await connection.QueryAsync<string>(provider switch
    {
        DatabaseProvider.PostgreSql => "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        DatabaseProvider.SqlServer => "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE = 'BASE TABLE'",
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    })).ToList();

    private static async Task<Dictionary<string, long>> Counts(MailRig rig)
    {
        await using var connection = await rig.Database.OpenAsync();
        var counts = new Dictionary<string, long>();
        foreach (var table in await Tables(connection, rig.Database.Provider)) counts[table] = await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
        return counts;
    }
}

public class Sqlite_erasure() : ErasureSuite(DatabaseProvider.Sqlite);

public class PostgreSql_erasure() : ErasureSuite(DatabaseProvider.PostgreSql);

public class SqlServer_erasure() : ErasureSuite(DatabaseProvider.SqlServer);
