using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `experiment`: the experiments judged on the database, and `experiment end NAME`, which writes the definition that
/// keeps the winner — a new version, as an appsettings-shaped file with the decision beside it — for the team to check
/// with `simulate` and put in force like any other definition change.
/// </summary>
public static class ExperimentCommand
{
    private static readonly JsonSerializerOptions FileOptions = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter() },
    };

    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of tables." };
        var command = new Command("experiment", "The nurture experiments judged on the configured database; `experiment end NAME` keeps the winner as a new definition version.") { json };
        command.SetAction(async (parse, cancel) =>
        {
            var (definition, store) = Open();
            var report = await ExperimentReport.ReadAsync(store, definition, DateTimeOffset.UtcNow, cancel);
            if (parse.GetValue(json)) Console.Out.WriteLine(JsonSerializer.Serialize(report, ReplayCommand.OutputOptions));
            else Console.Out.Write(report.Experiments.Count == 0 ? $"No experiment in definition {definition.Version}.{Environment.NewLine}" : ReportCommand.Print(report, definition.Value.Currency).TrimStart());
            return 0;
        });
        command.Subcommands.Add(End());
        return command;
    }

    private static Command End()
    {
        var name = new Argument<string>("name") { Description = "The experiment's Name, as the report shows it." };
        var keep = new Option<string?>("--keep") { Description = "The variant to keep; by default the one the data names the winner." };
        var force = new Option<bool>("--force") { Description = "Keep --keep even though the data names no winner or another one (recorded as such)." };
        var version = new Option<string?>("--version") { Description = "The new definition's Version; by default the current one counted up (2026-11.3 → 2026-11.4)." };
        var output = new Option<FileInfo?>("--out") { Description = "Where to write the new definition (appsettings shape); by default definition-{version}.json in the current folder." };
        var command = new Command("end", "End an experiment: write the definition that keeps the winner, as a new version, with the decision recorded beside it.") { name, keep, force, version, output };
        command.SetAction(async (parse, cancel) =>
        {
            var (definition, store) = Open();
            var experimentName = parse.GetValue(name)!;
            var report = await ExperimentReport.ReadAsync(store, definition, DateTimeOffset.UtcNow, cancel);
            var result = report.Experiments.FirstOrDefault(e => e.Name == experimentName)
                ?? throw new ArgumentException($"experiment: no experiment '{experimentName}' in definition {definition.Version} (there are: {string.Join(", ", report.Experiments.Select(e => e.Name).DefaultIfEmpty("none"))}).");
            var kept = parse.GetValue(keep) ?? result.Winner
                ?? throw new ArgumentException($"--keep: the data names no winner of '{experimentName}' yet ({result.Verdict}); give --keep A --force to end it anyway.");
            if (kept != result.Winner && !parse.GetValue(force))
            {
                throw new ArgumentException(result.Winner is null
                    ? $"--keep: the data names no winner of '{experimentName}' yet ({result.Verdict}); add --force to keep {kept} anyway."
                    : $"--keep: the data names {result.Winner} the winner of '{experimentName}', not {kept}; add --force to keep {kept} anyway.");
            }
            var next = parse.GetValue(version) ?? Experiments.NextVersion(definition.Version);
            if (next == definition.Version) throw new ArgumentException($"--version: '{next}' is the version in force; a changed definition needs a new one.");
            var changed = Experiments.Keep(definition, experimentName, kept, next).EnsureValid();
            var file = parse.GetValue(output)?.FullName ?? Path.GetFullPath($"definition-{next}.json");
            var decision = new
            {
                Experiment = experimentName, result.Track, result.Step, Kept = kept, result.Winner, AgainstTheData = kept != result.Winner,
                result.Verdict, Judge = result.Judge, DefinitionVersion = new { From = definition.Version, To = next }, DecidedAt = report.AsOf,
                Variants = result.Variants.Select(v => new { v.Variant, v.Leads, v.MqlRate, v.CustomerRate, v.RevenuePerLead, v.ClickRate }),
                result.Differences,
            };
            // An appsettings-shaped file: its Nurture:Definition section is the new definition; Decision says why it changed.
            var text = JsonSerializer.Serialize(new { Nurture = new { Definition = changed }, Decision = decision }, FileOptions);
            await File.WriteAllTextAsync(file, text + Environment.NewLine, cancel);
            Console.Out.WriteLine($"Wrote {file}: definition {next} keeps {kept} of '{experimentName}' (track {result.Track}, step {result.Step}) and ends the experiment.");
            Console.Out.WriteLine($"  {result.Verdict}");
            Console.Out.WriteLine($"  Check it: simulate {Path.GetFileName(file)}; then put its Nurture:Definition section in force on every worker (README: Experiments).");
            return 0;
        });
        return command;
    }

    private static (Definition Definition, LeadStore Store) Open()
    {
        var configuration = Settings.Load();
        var definition = DefinitionSettings.Load(configuration);
        var database = Settings.Database(configuration);
        database.Migrate();
        return (definition, new LeadStore(database));
    }
}
