using System.Globalization;
using System.Text.Json;
using MimeKit;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Tests.Email;
using Nurture.Worker.Tests.Messaging;
using Xunit.Abstractions;

namespace Nurture.Worker.Tests;

/// <summary>The built-in experiment (software-welcome-subject, A against B's subject line) end to end, and the sample's planted truth.</summary>
// The gauges are read from /metrics, which would also show another worker's experiment gauges if one ran beside it.
[Collection(nameof(Api.MetricsRunAlone))]
public class When_a_nurture_step_is_an_experiment(ITestOutputHelper output)
{
    private const string Name = "software-welcome-subject";

    [Fact]
    public async Task Should_send_each_lead_its_variant_and_judge_by_what_the_leads_did_after_the_step()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-experiment-").FullName;
        var experiment = Core.DefaultDefinition.Create().Nurture.Tracks.Single(t => t.Name == "software").Steps[0].Experiment!;
        var ids = Enumerable.Range(1, 10).Select(i => string.Create(CultureInfo.InvariantCulture, $"exp-{i}")).ToList();
        var b = ids.Where(id => Experiments.Assign(experiment, id).Name == "B").ToList();
        var a = ids.Except(b).ToList();
        Assert.True(a.Count >= 2 && b.Count >= 2, "the ten leads fall into both variants");
        var later = MailRig.Monday.AddHours(2);

        await using (var rig = await MailRig.StartAsync(folder: folder))
        {
            await rig.Apply([.. ids.Select(id => MailRig.Captured(id, MailRig.Monday, $"{id}@softwarehaus.example"))]);
            Assert.Equal(ids.Count, await rig.Dispatch.DispatchAllDueAsync());

            // Each lead got its variant's subject line; the control, the template's own.
            var subjects = Directory.GetFiles(rig.MailFolder, "*.eml").Select(f => MimeMessage.Load(f)).ToDictionary(m => m.To.Mailboxes.Single().Address.Split('@')[0], m => m.Subject);
            Assert.All(a, id => Assert.Equal("Willkommen bei Nurture Test!", subjects[id]));
            Assert.All(b, id => Assert.Equal("Anna, eine Testversion für Softwarehaus GmbH", subjects[id]));

            // After the step: two of B become MQLs, one of them a customer; an A lead clicks (shown, not judged) and one
            // became an MQL only after the window.
            foreach (var id in b.Take(2)) await rig.Apply(Did(id, ActivityType.TrialStarted, later), Did(id, ActivityType.DemoRequested, later.AddMinutes(5)));
            await rig.Apply(new DealWon { EventId = Guid.NewGuid(), LeadId = b[0], OccurredAt = later.AddDays(3), Revenue = 4800m, Currency = "EUR" });
            await rig.Apply(Did(a[0], ActivityType.EmailClicked, later, new() { ["track"] = "software", ["step"] = "0", ["link"] = "0", ["email"] = "x" }));
            await rig.Apply(Did(a[1], ActivityType.TrialStarted, MailRig.Monday.AddDays(31)), Did(a[1], ActivityType.DemoRequested, MailRig.Monday.AddDays(31).AddMinutes(5)));

            using var http = rig.Http();
            var waiting = await Experiment(http);
            Assert.Equal(ids.Count, waiting.GetProperty("variants").EnumerateArray().Sum(v => v.GetProperty("waiting").GetInt32()));
            Assert.Equal(0, waiting.GetProperty("variants").EnumerateArray().Sum(v => v.GetProperty("leads").GetInt32()));

            rig.Clock.Advance(TimeSpan.FromDays(32));
            var judged = await Experiment(http);
            var va = judged.GetProperty("variants")[0];
            var vb = judged.GetProperty("variants")[1];
            Assert.Equal((a.Count, 0, 0, 1), (va.GetProperty("leads").GetInt32(), va.GetProperty("mqls").GetInt32(), va.GetProperty("customers").GetInt32(), va.GetProperty("clicked").GetInt32()));
            Assert.Equal((b.Count, 2, 1, 4800m), (vb.GetProperty("leads").GetInt32(), vb.GetProperty("mqls").GetInt32(), vb.GetProperty("customers").GetInt32(), vb.GetProperty("revenue").GetDecimal()));
            Assert.Equal(Math.Round(2.0 / b.Count, 4), judged.GetProperty("differences")[0].GetProperty("mqlRate").GetProperty("value").GetDouble(), 4);
            // Ten leads decide nothing.
            Assert.Equal(JsonValueKind.Null, judged.GetProperty("winner").ValueKind);
            Assert.StartsWith("no winner yet", judged.GetProperty("verdict").GetString(), StringComparison.Ordinal);

            var scrape = await Eventually.Until(() => http.GetStringAsync("/metrics"),
                s => Gauge(s, "nurture_experiment_leads", ("experiment", Name), ("variant", "B"), ("state", "judged")) == b.Count, TimeSpan.FromSeconds(20), "the experiment gauges");
            Assert.Equal(0, Gauge(scrape, "nurture_experiment_winner", ("experiment", Name), ("variant", "B")));
            Assert.Equal(Math.Round(2.0 / b.Count, 4), Gauge(scrape, "nurture_experiment_rate", ("experiment", Name), ("variant", "B"), ("outcome", "mql"), ("bound", "estimate"))!.Value, 4);
            Assert.DoesNotContain("exp-1", scrape, StringComparison.Ordinal);
        }

        // Ending it by hand: refused without a winner unless forced; forced, a new version that `simulate` accepts as it stands.
        var refused = await When_a_user_runs_the_commands.Run(folder, "experiment", "end", Name, "--keep", "B");
        var ended = await When_a_user_runs_the_commands.Run(folder, "experiment", "end", Name, "--keep", "B", "--force", "--out", "kept.json");
        var simulated = await When_a_user_runs_the_commands.Run(folder, "simulate", "kept.json");

        Assert.Equal(2, refused.Code);
        Assert.StartsWith("--keep: the data names no winner of 'software-welcome-subject' yet", refused.Error, StringComparison.Ordinal);
        Assert.True(ended.Code == 0, ended.Error);
        using var file = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "kept.json")));
        var definition = file.RootElement.GetProperty("Nurture").GetProperty("Definition");
        var step = definition.GetProperty("Nurture").GetProperty("Tracks")[1].GetProperty("Steps")[0];
        Assert.Equal("2026-11.4", definition.GetProperty("Version").GetString());
        Assert.Equal(JsonValueKind.Null, step.GetProperty("Experiment").ValueKind);
        Assert.StartsWith("{{ lead.firstName", step.GetProperty("Subject").GetString(), StringComparison.Ordinal);
        var decision = file.RootElement.GetProperty("Decision");
        Assert.Equal(("B", true, "2026-11.3"), (decision.GetProperty("Kept").GetString(), decision.GetProperty("AgainstTheData").GetBoolean(), decision.GetProperty("DefinitionVersion").GetProperty("From").GetString()));
        Assert.True(simulated.Code == 0, simulated.Error);
    }

    [Fact]
    public void Should_find_the_samples_planted_variant_only_once_its_interval_excludes_zero()
    {
        // The generator's software leads that get B go further along their journey. Read every day as the dashboard would,
        // the report may name no winner, then B — never A, and never B while the interval still holds zero.
        var (track, step, experiment) = Experiments.All(Core.DefaultDefinition.Create()).Single();
        var exposures = Sample.Value;

        string? first = null;
        var undecided = 0;
        for (var day = 1; day <= SampleDays + 31; day++)
        {
            var result = Experiments.Judge(track.Name, step, experiment, exposures, SampleStart.AddDays(day));
            var d = result.Differences.Single().MqlRate;
            Assert.NotEqual("A", result.Winner);
            Assert.Equal(d.Low > 0, result.Winner == "B");
            if (result.Winner is null) undecided++;
            first ??= result.Winner is null ? null : $"day {day}: {result.Verdict}";
        }
        var last = Experiments.Judge(track.Name, step, experiment, exposures, SampleStart.AddDays(SampleDays + 31));

        output.WriteLine(first ?? "no winner");
        output.WriteLine($"{last.Variants.Sum(v => v.Leads)} leads judged: {last.Verdict}");
        Assert.Equal("B", last.Winner);
        Assert.True(undecided > 30, $"{undecided} days without a winner before the data decided");
        Assert.True(last.Variants.Sum(v => v.Leads) > 500);
    }

    [Fact]
    public void Should_name_no_winner_on_the_samples_data_split_by_an_experiment_that_changes_nothing()
    {
        // The same leads split 200 more ways, by experiments of other names: each split is independent of the planted one,
        // so no variant of theirs is better. Each is read every day; any day naming a winner counts as a false winner.
        var exposures = Sample.Value.Select(e => (e.LeadId, End: e.At.AddDays(30), Mql: e.MqlAt.Any(t => t >= e.At && t <= e.At.AddDays(30))))
            .OrderBy(e => e.End).ToList();
        const int Splits = 200;
        var falseWinners = 0;
        for (var k = 1; k <= Splits; k++)
        {
            var experiment = new StepExperiment
            {
                Name = string.Create(CultureInfo.InvariantCulture, $"sample-aa-{k}"), WindowDays = 30, Judge = ExperimentOutcome.Mql, Alpha = 0.05, PlannedLeads = 2000,
                Variants = [new() { Name = "A" }, new() { Name = "B" }],
            };
            var counts = new Dictionary<string, VariantCounts>(StringComparer.Ordinal) { ["A"] = new(), ["B"] = new() };
            var next = 0;
            for (var day = 1; day <= SampleDays + 31; day++)
            {
                var now = SampleStart.AddDays(day);
                for (; next < exposures.Count && exposures[next].End <= now; next++)
                {
                    counts[Experiments.Assign(experiment, exposures[next].LeadId).Name].Add(exposures[next].Mql, false, 0m, false);
                }
                if (Experiments.Judge("software", 0, experiment, counts, now).Winner is null) continue;
                falseWinners++;
                break;
            }
        }

        output.WriteLine($"false winners: {falseWinners} of {Splits}");
        Assert.True(falseWinners <= Splits * 0.05, $"{falseWinners} of {Splits} splits without an effect named a winner");
    }

    [Fact]
    public void Should_plant_nothing_where_no_track_has_an_experiment()
    {
        var without = Core.DefaultDefinition.Create();
        without.Nurture.Tracks[1].Steps[0].Experiment = null;
        var with = Core.DefaultDefinition.Create();
        var start = new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero);

        var plain = SampleLeads.Generate(300, seed: 5, start, 60, without);
        var planted = SampleLeads.Generate(300, seed: 5, start, 60, with);

        // The experiment's leads convert more, so the histories differ; without one, the generator is as it was.
        Assert.NotEqual(plain.Count, planted.Count);
        Assert.Equal(plain.Count, SampleLeads.Generate(300, seed: 5, start, 60, without).Count);
    }

    private static readonly DateTimeOffset SampleStart = new(2026, 1, 5, 8, 0, 0, TimeSpan.Zero);
    private const int SampleDays = 120;

    /// <summary>The generator's leads (2,000 over 120 days, seed 11) as the worker would record the built-in experiment's sends; made once.</summary>
    private static readonly Lazy<List<Exposure>> Sample = new(() =>
    {
        var definition = Core.DefaultDefinition.Create();
        var events = SampleLeads.Generate(2000, seed: 11, SampleStart, SampleDays, definition);
        // Only the software track has the experiment; replaying the other leads would tell nothing.
        var software = events.OfType<LeadCaptured>().Where(c => c.Industry == "software").Select(c => c.LeadId).ToHashSet(StringComparer.Ordinal);
        return Exposures(events.Where(e => e is LeadEvent l && software.Contains(l.LeadId)).ToList(), definition);
    });

    /// <summary>
    /// What the worker would record for the generator's leads: the welcome step goes out when due (the send window
    /// applied) to each software lead with consent; MQL transitions from a replay; won deals from the events.
    /// </summary>
    private static List<Exposure> Exposures(IReadOnlyList<NurtureMessage> events, Core.Definition definition)
    {
        var replay = Replay.Run(events, definition);
        var mqls = replay.Leads.ToDictionary(l => l.LeadId, l => l.Transitions.Where(t => t.To == LeadStage.Mql).Select(t => t.At).ToList());
        var deals = events.OfType<DealWon>().ToLookup(d => d.LeadId, d => (d.OccurredAt, d.Revenue));
        return events.OfType<LeadCaptured>().Where(c => c.Consent && c.Industry == "software").Select(c =>
        {
            var lead = Lifecycle.Decide(null, c, definition).Lead;
            var due = NurturePlan.First(lead, c.OccurredAt, definition)!.DueAt;
            return new Exposure(c.LeadId, due, mqls[c.LeadId], deals[c.LeadId].ToList());
        }).ToList();
    }

    /// <summary>The value of the one sample of <paramref name="metric"/> with these labels (in any order), or null.</summary>
    private static double? Gauge(string scrape, string metric, params (string Key, string Value)[] labels) =>
        scrape.Split('\n').Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal) && labels.All(p => l.Contains($"{p.Key}=\"{p.Value}\"", StringComparison.Ordinal)))
            .Select(l => (double?)double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)).SingleOrDefault();

    private static LeadActivityRecorded Did(string id, ActivityType activity, DateTimeOffset at, Dictionary<string, string>? properties = null) =>
        new() { EventId = Guid.NewGuid(), LeadId = id, OccurredAt = at, Activity = activity, Properties = properties };

    private static async Task<JsonElement> Experiment(HttpClient http)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync("/api/experiments"));
        return json.RootElement.GetProperty("experiments").EnumerateArray().Single(e => e.GetProperty("name").GetString() == Name).Clone();
    }
}
