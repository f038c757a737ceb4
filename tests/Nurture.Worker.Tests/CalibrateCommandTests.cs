using System.Text.Json;
using Nurture.Contracts;
using Nurture.Worker.Cli;
using static Nurture.Worker.Tests.When_a_user_runs_the_commands;

namespace Nurture.Worker.Tests;

/// <summary>`calibrate` run as a user runs it, on the sample generator's leads, whose deals are won by <see cref="SampleTruth"/>'s hidden rules.</summary>
public class When_a_user_calibrates_the_definition
{
    [Fact]
    public async Task Should_find_the_planted_rules_and_rank_held_out_deals_better_than_the_built_in_definition()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-calibrate-").FullName;
        var sample = await Run(folder, "sample", "--leads", "3000", "--days", "300", "--seed", "22");
        Assert.True(sample.Code == 0, sample.Error);
        await File.WriteAllTextAsync(Path.Combine(folder, "events.ndjson"), sample.Out);

        var result = await Run(folder, "calibrate", "events.ndjson", "--target-mql-rate", "0.3", "--out", "proposal.json", "--json");

        Assert.True(result.Code == 0, result.Error);
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.False(root.GetProperty("tooThin").GetBoolean());
        var points = root.GetProperty("points").EnumerateArray().ToDictionary(p => p.GetProperty("setting").GetString()!, p => p.GetProperty("proposed").GetDouble());
        double Activity(ActivityType type) => points[$"Scoring:Activities:{Core.Activities.NameOf(type)}"];
        // The planted order: a demo request wins most deals, then the pricing page and the webinar (strong), a whitepaper
        // little and a trial nothing (weak). Each strong rule must come out above each weak one, and the demo above the webinar.
        var strong = SampleTruth.Activities.Where(a => a.Value >= 1).Select(a => a.Key).ToList();
        var weak = SampleTruth.Activities.Where(a => a.Value is >= 0 and < 1).Select(a => a.Key).ToList();
        Assert.Equal([ActivityType.DemoRequested, ActivityType.PricingPageViewed, ActivityType.WebinarAttended], strong);
        Assert.All(strong, s => Assert.All(weak, w => Assert.True(Activity(s) > Activity(w), $"{s} ({Activity(s)}) should outscore {w} ({Activity(w)})")));
        Assert.True(Activity(ActivityType.DemoRequested) > Activity(ActivityType.WebinarAttended), result.Out);
        // The built-in definition has a trial (30) above the webinar (20) and the pricing page (10): the proposal turns that round.
        Assert.True(Activity(ActivityType.TrialStarted) < Activity(ActivityType.WebinarAttended) && Activity(ActivityType.TrialStarted) < Activity(ActivityType.PricingPageViewed));
        Assert.True(Activity(ActivityType.CareersPageViewed) < 0);
        Assert.True(points["Scoring:Fit:Roles:*:student"] < 0);
        var current = root.GetProperty("current").GetProperty("auc").GetDouble();
        var proposed = root.GetProperty("proposed").GetProperty("auc").GetDouble();
        Assert.True(proposed > current + 0.05, $"held-out AUC: proposed {proposed}, current {current}");
        Assert.Equal(0.3, root.GetProperty("threshold").GetProperty("trainingMqlRate").GetDouble(), 1);

        // The written proposal is a definition the worker accepts as it is, with its new version.
        var definition = await Run(folder, "definition", "--settings", "proposal.json");
        Assert.True(definition.Code == 0, definition.Error);
        using var read = JsonDocument.Parse(definition.Out);
        Assert.EndsWith("-calibrated-" + DateTimeOffset.Parse(root.GetProperty("data").GetProperty("latestEvent").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture),
            read.RootElement.GetProperty("Version").GetString(), StringComparison.Ordinal);
        Assert.Equal(Activity(ActivityType.DemoRequested), read.RootElement.GetProperty("Scoring").GetProperty("Activities").GetProperty("demoRequested").GetProperty("Points").GetDouble());

        var text = await Run(folder, "calibrate", "events.ndjson", "--target-mql-rate", "0.3");
        Assert.True(text.Code == 0, text.Error);
        Assert.Matches(@"AUC \(won vs lost deals\) +0\.\d{3} +0\.\d{3}", text.Out);
    }

    [Fact]
    public async Task Should_refuse_to_write_a_proposal_from_thin_history_unless_forced_and_simulate_should_accept_it_unchanged()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-calibrate-thin-").FullName;
        Assert.Equal(0, (await Run(folder, "ingest", Path.Combine(Repository.Root, "samples", "events.ndjson"))).Code);

        var refused = await Run(folder, "calibrate", "--out", "proposal.json");

        Assert.Equal(2, refused.Code);
        Assert.Contains("Too thin to trust", refused.Out, StringComparison.Ordinal);
        Assert.Contains("calibrate: did not write 'proposal.json'", refused.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(folder, "proposal.json")));

        var forced = await Run(folder, "calibrate", "--out", "proposal.json", "--force", "--json");

        Assert.True(forced.Code == 0, forced.Error);
        Assert.True(File.Exists(Path.Combine(folder, "proposal.json")));
        using var json = JsonDocument.Parse(forced.Out);
        Assert.True(json.RootElement.GetProperty("tooThin").GetBoolean());
        Assert.StartsWith("SQLite", json.RootElement.GetProperty("from").GetString(), StringComparison.Ordinal);
        var simulated = await Run(folder, "simulate", "proposal.json", "--json");
        Assert.True(simulated.Code == 0, simulated.Error);
        using var simulation = JsonDocument.Parse(simulated.Out);
        Assert.Contains("-calibrated-", simulation.RootElement.GetProperty("proposed").GetProperty("definition").GetString(), StringComparison.Ordinal);
        using var written = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "proposal.json")));
        Assert.Equal(json.RootElement.GetProperty("threshold").GetProperty("proposed").GetDouble(),
            written.RootElement.GetProperty("Nurture").GetProperty("Definition").GetProperty("Qualification").GetProperty("MqlThreshold").GetDouble());

        var bad = await Run(folder, "calibrate", "--target-mql-rate", "20");
        Assert.Equal(2, bad.Code);
        Assert.Contains("target MQL rate: 20 must lie above 0 and at most 1", bad.Error, StringComparison.Ordinal);
    }
}
