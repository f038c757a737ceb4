using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `simulate`: replays the stored history under a proposed definition and under the live one, and shows what would
/// change — the MQL count, which leads would flip, the MQL value — before anyone changes the live definition.
/// </summary>
public static class SimulateCommand
{
    public static Command Create()
    {
        var proposed = new Argument<FileInfo>("proposed") { Description = "A settings file (appsettings shape) whose Nurture:Definition section is the proposed definition." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var show = new Option<int>("--show") { Description = "How many flipped leads to list.", DefaultValueFactory = _ => 20 };
        var command = new Command("simulate", "Replay the stored history under a proposed definition and compare it with the live one.") { proposed, json, show };
        command.SetAction(async (parse, cancel) =>
        {
            var file = parse.GetValue(proposed)!;
            if (!file.Exists) throw new FileNotFoundException($"simulate: the file '{file.FullName}' does not exist; write the proposed definition as a Nurture:Definition section (`definition` prints the live one).", file.FullName);
            var configuration = Settings.Load();
            var live = DefinitionSettings.Load(configuration);
            var proposedConfiguration = DefinitionSettings.FromFile(file.FullName);
            if (!proposedConfiguration.GetSection(Definition.Section).Exists())
            {
                throw new ArgumentException($"simulate: '{file.Name}' has no {Definition.Section} section; `definition` prints the live one to start from.");
            }
            var candidate = DefinitionSettings.Load(proposedConfiguration);
            var database = Settings.Database(configuration);
            database.Migrate();
            var store = new LeadStore(database);
            var events = await store.ReadAllEventsAsync(cancel);
            if (events.Count == 0) throw new ArgumentException($"simulate: {database.Describe()} holds no events yet; ingest some first (`ingest samples/events.ndjson`).");

            var now = DateTimeOffset.UtcNow;
            var a = Replay.Run(events, live, now);
            var b = Replay.Run(events, candidate, now);
            var before = a.Leads.ToDictionary(l => l.LeadId);
            var flips = b.Leads.Select(l => (After: l, Before: before[l.LeadId]))
                .Where(p => ReachedMql(p.Before) != ReachedMql(p.After))
                .Select(p => new { leadId = p.After.LeadId, source = p.After.Source, wasMql = ReachedMql(p.Before), isMql = ReachedMql(p.After), scoreBefore = p.Before.Score, scoreAfter = p.After.Score })
                .ToList();
            // What `report` counts: leads the stored decisions made an MQL, under the definitions in force when each event arrived.
            var storedMqls = (await store.ReadFunnelAsync(cancel)).Single(f => f.Stage == LeadStage.Mql).Reached;
            var result = new
            {
                events = events.Count,
                stored = new { mqls = storedMqls },
                live = new { definition = $"{live.Name} {live.Version}", mqls = a.Leads.Count(ReachedMql), mqlValue = a.Summary.MqlValue },
                proposed = new { definition = $"{candidate.Name} {candidate.Version}", mqls = b.Leads.Count(ReachedMql), mqlValue = b.Summary.MqlValue },
                becomeMql = flips.Count(f => f.isMql),
                stopBeingMql = flips.Count(f => !f.isMql),
                flips = flips.Take(Math.Max(0, parse.GetValue(show))).ToList(),
            };
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(result, ReplayCommand.OutputOptions));
                return 0;
            }
            var c = CultureInfo.InvariantCulture;
            string Value(ValueEstimate v) => $"{ReportCommand.Money(v.Value, v.Currency)} (95 %: {ReportCommand.Money(v.ValueLow, v.Currency)} – {ReportCommand.Money(v.ValueHigh, v.Currency)}), {v.Customers} of {v.Mqls} MQLs closed";
            Console.Out.WriteLine(string.Create(c, $"""
                {events.Count} stored events replayed under both definitions
                                 live ({live.Version})    proposed ({candidate.Version})
                  MQLs           {result.live.mqls,-20} {result.proposed.mqls}   (leads the definition qualified)
                  MQL value      live:     {Value(a.Summary.MqlValue)}
                                 proposed: {Value(b.Summary.MqlValue)}
                  {result.becomeMql} leads would become MQLs, {result.stopBeingMql} would no longer be.
                """));
            Console.Out.WriteLine(storedMqls == result.live.mqls
                ? string.Create(c, $"  MQLs counts leads the definition made an MQL at some point, as `report`'s \"reached\" for Mql does ({storedMqls}).")
                : string.Create(c, $"  `report` says {storedMqls} reached MQL: those were decided as the events arrived, under the definition in force then; the live column decides the whole history again under {live.Version}."));
            foreach (var f in result.flips) Console.Out.WriteLine(string.Create(c, $"  {f.leadId,-14} {f.source,-18} {(f.isMql ? "becomes an MQL" : "no longer an MQL"),-17} score {f.scoreBefore} → {f.scoreAfter}"));
            if (flips.Count > result.flips.Count) Console.Out.WriteLine($"  … and {flips.Count - result.flips.Count} more (--show N, or --json)");
            Console.Out.WriteLine("Nothing was changed. To adopt it, put the proposed Nurture:Definition into the worker's settings and restart it.");
            return 0;
        });
        return command;
    }

    /// <summary>The definition called the lead an MQL at some point (sales taking a lead early does not count).</summary>
    private static bool ReachedMql(LeadOutcome lead) => lead.Transitions.Any(t => t.To == LeadStage.Mql);
}
