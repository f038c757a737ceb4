using System.CommandLine;
using Nurture.Contracts;

namespace Nurture.Worker.Cli;

/// <summary>`sample`: writes realistic lead events for the article's three businesses as NDJSON (how samples/events.ndjson was made).</summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var leads = new Option<int>("--leads") { Description = "How many leads.", DefaultValueFactory = _ => 240 };
        var seed = new Option<int>("--seed") { Description = "Random seed; the same seed gives the same events.", DefaultValueFactory = _ => 7 };
        var days = new Option<int>("--days") { Description = "Days over which leads are captured.", DefaultValueFactory = _ => 120 };
        var start = new Option<DateTimeOffset>("--start") { Description = "When the first day starts (ISO 8601).", DefaultValueFactory = _ => new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero) };
        var command = new Command("sample", "Write sample lead events (three example businesses, with sales outcomes and won deals) as NDJSON to standard output.") { leads, seed, days, start };
        command.SetAction(parse =>
        {
            var count = parse.GetValue(leads);
            if (count < 1) throw new ArgumentException("--leads must be at least 1.");
            var events = SampleLeads.Generate(count, parse.GetValue(seed), parse.GetValue(start), Math.Max(1, parse.GetValue(days)), Core.DefaultDefinition.Create());
            using var stdout = new StreamWriter(Console.OpenStandardOutput()) { NewLine = "\n" };
            using var progress = new Progress("sample", events.Count, "events");
            foreach (var e in events)
            {
                stdout.WriteLine(EventJson.Write(e));
                progress.Advance();
            }
            stdout.Flush();
            progress.Done();
            return 0;
        });
        return command;
    }
}
