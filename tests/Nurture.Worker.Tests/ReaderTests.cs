using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Nurture.Contracts;
using Nurture.Worker.Api;
using Nurture.Worker.Cli;
using Nurture.Worker.Messaging;

namespace Nurture.Worker.Tests;

/// <summary>
/// One reader on every way in, and the JSON Schemas in schemas/ agreeing with it: every example in docs/events.md and
/// samples/events.ndjson is accepted by both, every case of tests/corpus/bad-events is refused by both, and the bus,
/// HTTP and `replay`/`ingest` give the same reason (the one in the case's .reason file).
/// </summary>
public partial class When_events_are_read_on_any_way_in
{
    private static readonly string Corpus = Path.Combine(Repository.Root, "tests", "corpus", "bad-events");

    private static readonly Dictionary<string, (JsonSchema Schema, bool Incoming)> Schemas = LoadSchemas();

    public static TheoryData<string> BadEvents() => new(Directory.GetFiles(Corpus, "*.json").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!);

    public static TheoryData<string> GoodEvents()
    {
        var markdown = File.ReadAllText(Path.Combine(Repository.Root, "docs", "events.md"));
        var examples = JsonBlock().Matches(markdown).Select(m => m.Groups[1].Value.Trim());
        var samples = File.ReadLines(Path.Combine(Repository.Root, "samples", "events.ndjson")).Where(l => l.Length > 0).Take(400);
        return new(examples.Concat(samples));
    }

    [Theory]
    [MemberData(nameof(BadEvents))]
    public async Task Should_refuse_every_corpus_case_with_its_reason_on_the_bus_over_http_and_in_replay_and_by_the_schema(string name)
    {
        var bytes = await File.ReadAllBytesAsync(Path.Combine(Corpus, name + ".json"));
        var expected = (await File.ReadAllTextAsync(Path.Combine(Corpus, name + ".reason"))).TrimEnd('\n');

        var bus = Assert.IsType<UnreadableEvent>(PlainJsonEvents.Read(bytes)).Reason;
        var (_, httpErrors) = NurtureApi.Parse(bytes, "application/json");
        var (_, replayRejected) = await ReplayCommand.ReadAsync(new StreamReader(new MemoryStream(bytes)), CancellationToken.None);

        Assert.Equal(expected, bus);
        Assert.Equal(expected, Assert.Single(httpErrors).Reason);
        Assert.Equal(expected, Assert.Single(replayRejected).Reason);
        Assert.False(SchemaAccepts(bytes, out var why), $"the schemas accept {name}: {why}");
    }

    [Theory]
    [MemberData(nameof(GoodEvents))]
    public void Should_accept_every_documented_example_and_sample_with_the_reader_and_the_schema(string json)
    {
        Assert.True(EventJson.TryParse(json, out _, out var error), error);
        Assert.True(SchemaAccepts(Encoding.UTF8.GetBytes(json), out var why, incomingOnly: false), why);
    }

    [Fact]
    public void Should_give_the_schemas_the_readers_patterns()
    {
        foreach (var (file, _) in Schemas)
        {
            using var schema = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repository.Root, "schemas", file + ".schema.json")));
            foreach (var p in schema.RootElement.GetProperty("properties").EnumerateObject())
            {
                var pattern = p.Value.TryGetProperty("pattern", out var x) ? x.GetString() : null;
                var format = p.Value.TryGetProperty("format", out var f) ? f.GetString() : null;
                var expected = (p.Name, format) switch
                {
                    ("email", _) => EventJson.Limits.EmailPattern,
                    ("currency", _) => EventJson.Limits.CurrencyPattern,
                    (_, "date-time") => EventJson.Limits.DateTimePattern,
                    (_, "date") => EventJson.Limits.DatePattern,
                    (_, "uuid") => EventJson.Limits.UuidPattern,
                    _ => pattern,
                };
                Assert.True(expected == pattern, $"{file}.{p.Name}: pattern {pattern}, the reader uses {expected}");
            }
        }
    }

    [Fact]
    public void Should_skip_a_leading_byte_order_mark_on_every_way_in()
    {
        var json = File.ReadAllText(Path.Combine(Repository.Root, "samples", "events.ndjson")).Split('\n')[0];
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes(json)).ToArray();

        Assert.IsType<LeadCaptured>(PlainJsonEvents.Read(bytes));
        Assert.Single(NurtureApi.Parse(bytes, "application/json").Events);
        Assert.True(EventJson.TryParseIncoming(bytes, out _, out var error), error);
        Assert.True(SchemaAccepts(bytes, out var why), why);
    }

    [Fact]
    public async Task Should_refuse_an_outgoing_event_in_replay_rather_than_ignore_it()
    {
        var line = File.ReadAllText(Path.Combine(Corpus, "type-outgoing.json"));

        var (events, rejected) = await ReplayCommand.ReadAsync(new StringReader(line), CancellationToken.None);

        Assert.Empty(events);
        Assert.StartsWith("type: 'LeadScored' is an event Nurture publishes", Assert.Single(rejected).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_read_a_file_larger_than_its_read_buffer_line_by_line_as_lines_of_text_are_read()
    {
        // The sample's lines again and again (3.5 MiB, several of the reader's 1 MiB buffers, so lines cross them), a
        // junk line of 2 MiB (longer than a buffer), blank lines, Windows line ends, and no newline after the last line.
        var sample = File.ReadLines(Path.Combine(Repository.Root, "samples", "events.ndjson")).Where(l => l.Length > 0).Take(400).ToList();
        var text = new StringBuilder();
        for (var i = 0; text.Length < 3_500_000; i++)
        {
            text.Append(sample[i % sample.Count]).Append(i % 97 == 0 ? "\r\n" : "\n");
            if (i == 5_000) text.Append('x', 2 << 20).Append('\n');
            if (i % 1_000 == 0) text.Append("\n \t\n");
        }
        text.Append(sample[0]);
        var bytes = Encoding.UTF8.GetBytes(text.ToString());

        var streamed = new List<ReplayCommand.EventLine>();
        await foreach (var line in ReplayCommand.ReadLinesAsync(new StreamReader(new MemoryStream(bytes)), CancellationToken.None)) streamed.Add(line);
        var asText = new List<ReplayCommand.EventLine>();
        await foreach (var line in ReplayCommand.ReadLinesAsync(new StringReader(text.ToString()), CancellationToken.None)) asText.Add(line);

        Assert.Equal(asText.Select(l => (l.Number, l.Event?.EventId, l.Error)), streamed.Select(l => (l.Number, l.Event?.EventId, l.Error)));
        var junk = Assert.Single(streamed, l => l.Event is null);
        Assert.Equal(5_001 + 5 * 2 + 1, junk.Number); // after 5,001 events and the ten blank lines among them
        Assert.Equal(bytes.Length, streamed[^1].End); // the last line, with no newline after it
        Assert.Equal(sample[0], Encoding.UTF8.GetString(bytes.AsSpan((int)streamed[^2].End)));
        Assert.Equal(streamed.Count(l => l.Event is not null) + 1, streamed.Count);
    }

    [Fact]
    public void Should_list_only_incoming_types_when_the_type_is_unknown()
    {
        Assert.False(EventJson.TryParseIncoming("""{"type":"LeadTeleported"}"""u8, out _, out var error));

        foreach (var (name, type) in EventJson.Types) Assert.Equal(EventJson.Incoming.Contains(type), error.Contains(name, StringComparison.Ordinal));
    }

    /// <summary>What a JSON Schema validator says: strict UTF-8 (a leading BOM skipped), one JSON value without duplicate keys, and the schema its type names.</summary>
    private static bool SchemaAccepts(byte[] bytes, out string why, bool incomingOnly = true)
    {
        try
        {
            var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes).TrimStart('\uFEFF');
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = false });
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                why = "no type";
                return false;
            }
            if (!Schemas.TryGetValue(type.GetString()!, out var schema) || incomingOnly && !schema.Incoming)
            {
                why = "no incoming schema for " + type.GetString();
                return false;
            }
            var result = schema.Schema.Evaluate(document.RootElement, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.List });
            why = string.Join("; ", (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));
            return result.IsValid;
        }
        catch (Exception e) when (e is DecoderFallbackException or JsonException)
        {
            why = e.Message;
            return false;
        }
    }

    private static Dictionary<string, (JsonSchema, bool)> LoadSchemas()
    {
        var options = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        return Directory.GetFiles(Path.Combine(Repository.Root, "schemas"), "*.schema.json").ToDictionary(
            f => Path.GetFileName(f)[..^".schema.json".Length],
            f =>
            {
                var text = File.ReadAllText(f);
                return (JsonSchema.FromText(text, options), text.Contains("(incoming)", StringComparison.Ordinal));
            },
            StringComparer.Ordinal);
    }

    [GeneratedRegex("```json\\s*\\n(.*?)\\n```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();
}
