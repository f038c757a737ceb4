using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Nurture.Contracts;
using Xunit.Abstractions;
using Nurture.Worker.Tests;

namespace Nurture.Faults.Tests;

/// <summary>
/// Every case of tests/corpus/bad-events sent to a running worker, between good events: through RabbitMQ each ends in
/// the error queue with its reason and a rejected_events row; over HTTP each gets a 400 naming it; the good events
/// around them are stored either way.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class When_bad_input_reaches_the_worker(FaultRig rig, ITestOutputHelper output)
{
    private static readonly string Corpus = Path.Combine(Repository.Root, "tests", "corpus", "bad-events");

    [SkippableFact]
    public async Task Should_answer_every_corpus_case_with_its_reason_on_the_bus_and_over_http_and_store_the_good_events_around_them()
    {
        rig.Require();
        var cases = Directory.GetFiles(Corpus, "*.json").Order(StringComparer.Ordinal)
            .Select(f => (Name: Path.GetFileNameWithoutExtension(f), Body: File.ReadAllBytes(f), Reason: File.ReadAllText(Path.ChangeExtension(f, ".reason")).TrimEnd('\n')))
            .ToList();
        Assert.NotEmpty(cases);
        var database = await rig.NewDatabaseAsync("badinput");
        var folder = rig.NewFolder("badinput");
        var environment = FaultRig.WorkerEnvironment(database);
        environment["ConnectionStrings__RabbitMq"] = rig.RabbitMq!.Amqp.ToString();
        const string queue = "nurture-faults-badinput";
        const string exchange = "nurture.faults.badinput";
        await using var worker = WorkerProcess.Start(
            ["--Nurture:Bus:Transport=RabbitMq", $"--Nurture:Bus:Queue={queue}", $"--Nurture:Bus:Exchange={exchange}", "--Nurture:Schedule:Enabled=false",
             $"--Nurture:Email:PickupDirectory={Path.Combine(folder, "mail")}"],
            environment, folder);
        await worker.WaitReadyAsync(TimeSpan.FromMinutes(3));

        // The bus: good, bad, good, bad, … good.
        var busGood = Good("bus", cases.Count + 1);
        await rig.PublishAsync(exchange, busGood.Take(1).Concat(cases.SelectMany((c, i) => new[] { c.Body, busGood[i + 1] })));
        await Eventually.Until(() => FaultRig.CountAsync(database, "SELECT COUNT(*) FROM lead_events WHERE lead_id LIKE 'good-bus-%'"), n => n == busGood.Count, TimeSpan.FromMinutes(2), "the good events on the bus stored", worker.ThrowIfExited);
        var errors = new List<(byte[] Body, string Reason)>();
        await Eventually.Until(async () =>
        {
            errors.AddRange(await rig.TakeAllAsync(queue + "_error"));
            return errors.Count;
        }, n => n >= cases.Count, TimeSpan.FromMinutes(1), $"{cases.Count} messages in {queue}_error", worker.ThrowIfExited);
        var rejected = await Eventually.Until(() => FaultRig.CountAsync(database, "SELECT COUNT(*) FROM rejected_events"), n => n >= cases.Count, TimeSpan.FromSeconds(30), "a rejected_events row for each");
        var busWrong = cases.Select(c => c.Reason).Order(StringComparer.Ordinal).Except(errors.Select(e => e.Reason), StringComparer.Ordinal).ToList();

        // HTTP: each case alone as a request, then the good events in their own.
        var httpWrong = new List<string>();
        using var http = new HttpClient { BaseAddress = worker.Http.BaseAddress };
        http.DefaultRequestHeaders.Add("X-Api-Key", FaultRig.ApiKey);
        foreach (var (name, body, reason) in cases)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await http.PostAsync(new Uri("/api/events", UriKind.Relative), content);
            var answer = await response.Content.ReadAsStringAsync();
            if (response.StatusCode != HttpStatusCode.BadRequest || !Reasons(answer).Contains(reason)) httpWrong.Add($"{name}: {(int)response.StatusCode} {answer}");
        }
        var httpGood = Good("http", cases.Count + 1);
        using (var content = new ByteArrayContent(Encoding.UTF8.GetBytes(string.Join('\n', httpGood.Select(Encoding.UTF8.GetString)))))
        {
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
            using var response = await http.PostAsync(new Uri("/api/events", UriKind.Relative), content);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }
        var httpStored = await FaultRig.CountAsync(database, "SELECT COUNT(*) FROM lead_events WHERE lead_id LIKE 'good-http-%'");

        rig.Report(output, $"the bad-input corpus ({cases.Count} cases) through the bus and the API", [
            $"bus: {errors.Count} in the error queue, {rejected} rejected_events rows, {cases.Count - busWrong.Count} of {cases.Count} with the case's exact reason; {busGood.Count} good events around them stored",
            $"API: {cases.Count - httpWrong.Count} of {cases.Count} answered 400 with the case's reason; {httpStored} of {httpGood.Count} good events stored",
        ]);
        Assert.True(busWrong.Count == 0, "no error-queue message with these reasons:\n" + string.Join("\n", busWrong) + "\nseen:\n" + string.Join("\n", errors.Select(e => e.Reason)));
        Assert.Equal(cases.Count, errors.Count);
        Assert.Equal(cases.Count, rejected);
        Assert.True(httpWrong.Count == 0, string.Join("\n", httpWrong));
        Assert.Equal(httpGood.Count, httpStored);
    }

    private static List<byte[]> Good(string way, int count) => Enumerable.Range(0, count).Select(i => Encoding.UTF8.GetBytes(EventJson.Write(new LeadCaptured
    {
        EventId = Guid.NewGuid(), LeadId = $"good-{way}-{i:D3}", OccurredAt = DateTimeOffset.UtcNow.AddDays(-1), Email = $"good-{way}-{i:D3}@faults.example",
        Source = "webinar", Consent = false,
    }))).ToList();

    /// <summary>The reasons in a problem details answer's "errors".</summary>
    private static HashSet<string> Reasons(string answer)
    {
        try
        {
            using var json = JsonDocument.Parse(answer);
            return json.RootElement.TryGetProperty("errors", out var errors)
                ? errors.EnumerateArray().Select(e => e.TryGetProperty("reason", out var r) ? r.GetString() ?? "" : "").ToHashSet(StringComparer.Ordinal)
                : [];
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
