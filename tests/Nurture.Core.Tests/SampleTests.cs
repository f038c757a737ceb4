using System.Text.RegularExpressions;
using Nurture.Contracts;

namespace Nurture.Core.Tests;

/// <summary>The committed sample, the documented events and their schemas stay true to the code.</summary>
public partial class When_the_samples_and_docs_are_read
{
    private static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Nurture.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Nurture.sln not found above the test folder.");
    }

    private static List<NurtureMessage> Sample() =>
        File.ReadLines(Path.Combine(Root, "samples", "events.ndjson")).Where(l => l.Length > 0).Select(EventJson.Parse).ToList();

    [Fact]
    public void Should_replay_the_sample_to_stages_and_an_mql_value()
    {
        var events = Sample();

        var result = Replay.Run(events, DefaultDefinition.Create());

        Assert.True(result.Leads.Count >= 200);
        foreach (var industry in new[] { "landscaping", "software", "solar" })
        {
            Assert.Contains(events.OfType<LeadCaptured>(), c => c.Industry == industry);
        }
        Assert.True(result.Summary.LeadsPerStage[LeadStage.Customer] > 0);
        Assert.True(result.Summary.LeadsPerStage[LeadStage.Mql] + result.Summary.LeadsPerStage[LeadStage.Sal] > 0);
        Assert.Contains(events, e => e is DealWon);
        Assert.True(result.Summary.MqlValue.Mqls > 0 && result.Summary.MqlValue.Value > 0);
        Assert.True(result.Summary.MqlValue.ValueLow < result.Summary.MqlValue.Value && result.Summary.MqlValue.Value < result.Summary.MqlValue.ValueHigh);
    }

    [Fact]
    public void Should_replay_the_sample_shuffled_to_the_same_result()
    {
        var events = Sample();
        var shuffled = events.OrderBy(e => e.EventId.ToString("N")[5..]).ToList();
        Assert.NotEqual(events.Select(e => e.EventId), shuffled.Select(e => e.EventId));

        var a = Replay.Run(events, DefaultDefinition.Create());
        var b = Replay.Run(shuffled, DefaultDefinition.Create());

        Assert.Equal(a.Leads.Select(l => (l.LeadId, l.Stage, l.Score)), b.Leads.Select(l => (l.LeadId, l.Stage, l.Score)));
        Assert.Equal(a.Summary.MqlValue, b.Summary.MqlValue);
        Assert.Equal(a.Summary.MqlValueBySource, b.Summary.MqlValueBySource);
    }

    [Fact]
    public void Should_document_one_parsable_example_and_a_schema_for_every_event()
    {
        var markdown = File.ReadAllText(Path.Combine(Root, "docs", "events.md"));
        var examples = JsonBlock().Matches(markdown).Select(m => m.Groups[1].Value.Trim()).ToList();

        var parsed = examples.Select(json => EventJson.TryParse(json, out var m, out var error) ? m : throw new Xunit.Sdk.XunitException($"{error} in: {json}")).ToList();

        Assert.Equal(EventJson.Types.Keys.Order(StringComparer.Ordinal), parsed.Select(m => m.GetType().Name).Order(StringComparer.Ordinal));
        foreach (var type in EventJson.Types.Keys)
        {
            Assert.True(File.Exists(Path.Combine(Root, "schemas", $"{type}.schema.json")), $"schemas/{type}.schema.json is missing");
        }
    }

    [Theory]
    [InlineData("{", "")]
    [InlineData("[1,2]", "$: the event must be a JSON object")]
    [InlineData("""{"eventId":"3f1c2b4e-0000-4000-8000-000000000001"}""", "type: missing")]
    [InlineData("""{"type":"LeadTeleported","leadId":"x"}""", "type: 'LeadTeleported' is not an event Nurture reads")]
    [InlineData("""{"type":"LeadActivityRecorded","eventId":"3f1c2b4e-0000-4000-8000-000000000001","occurredAt":"2026-11-02T09:00:00Z","activity":"webinarAttended"}""", "leadId: required but missing")]
    [InlineData("""{"type":"LeadActivityRecorded","eventId":"3f1c2b4e-0000-4000-8000-000000000001","leadId":"l","occurredAt":"2026-11-02T09:00:00Z","activity":"webinarWatched"}""", "activity:")]
    [InlineData("""{"type":"DealWon","eventId":"3f1c2b4e-0000-4000-8000-000000000001","leadId":"l","occurredAt":"2026-11-02T09:00:00Z","revenue":"lots","currency":"EUR"}""", "revenue:")]
    [InlineData("""{"type":"LeadUnsubscribed","eventId":"00000000-0000-0000-0000-000000000000","leadId":"l","occurredAt":"2026-11-02T09:00:00Z"}""", "eventId: missing or empty")]
    [InlineData("""{"type":"LeadUnsubscribed","eventId":"3f1c2b4e-0000-4000-8000-000000000001","leadId":"  ","occurredAt":"2026-11-02T09:00:00Z"}""", "leadId: missing or empty")]
    public void Should_reject_bad_json_naming_the_field(string json, string expected)
    {
        Assert.False(EventJson.TryParse(json, out _, out var error));
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_reject_a_field_over_its_size_limit()
    {
        var json = $$"""{"type":"LeadCaptured","eventId":"3f1c2b4e-0000-4000-8000-000000000001","leadId":"l","occurredAt":"2026-11-02T09:00:00Z","email":"a@b.example","source":"seo","consent":true,"company":"{{new string('x', 300)}}"}""";

        Assert.False(EventJson.TryParse(json, out _, out var error));
        Assert.Equal("company: longer than 256 characters.", error);
    }

    [GeneratedRegex("```json\\s*\\n(.*?)\\n```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();
}
