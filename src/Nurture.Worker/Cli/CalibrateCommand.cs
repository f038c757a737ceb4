using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `calibrate`: fits the definition's points to the deals sales won and lost, proposes a definition of the same shape
/// (new points, a threshold for a target), and compares it with the current one on the latest leads, held out of the fit.
/// </summary>
public static class CalibrateCommand
{
    private static readonly JsonSerializerOptions DefinitionJson = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter() },
    };

    public static Command Create()
    {
        var events = new Argument<FileInfo?>("events") { Description = "NDJSON file of events ('-' reads standard input); without it, the history stored in the configured database.", Arity = ArgumentArity.ZeroOrOne };
        var settings = new Option<FileInfo?>("--settings") { Description = "A settings file whose Nurture:Definition section is the definition to start from; otherwise the one in force." };
        var output = new Option<FileInfo?>("--out") { Description = "Write the proposed definition here, as a settings file `simulate` and the worker read." };
        var force = new Option<bool>("--force") { Description = "Write the proposal even when the data is too thin to trust." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var mqlRate = new Option<double?>("--target-mql-rate") { Description = "Pick the threshold so this share of leads becomes an MQL (0.2 = 20 %); by default the share the current definition qualifies." };
        var precision = new Option<double?>("--target-precision") { Description = "Pick the lowest threshold whose MQLs win a deal at least this often (0.3 = 30 %)." };
        var heldOut = new Option<double>("--held-out") { Description = "The share of leads, the latest by capture time, kept out of the fit to judge it.", DefaultValueFactory = _ => 0.3 };
        var l2 = new Option<double>("--l2") { Description = "How strongly the points are pulled toward the current ones (the L2 penalty, in log-odds).", DefaultValueFactory = _ => 1 };
        var version = new Option<string?>("--proposal-version") { Description = "The proposal's Version; by default the current one with -calibrated- and the latest event's date." };
        var command = new Command("calibrate", "Fit the definition's points to won and lost deals, propose a definition of the same shape and compare both on held-out leads.")
        {
            events, settings, output, force, json, mqlRate, precision, heldOut, l2, version,
        };
        command.SetAction(async (parse, cancel) =>
        {
            var settingsFile = parse.GetValue(settings)?.FullName;
            var current = settingsFile is null ? DefinitionSettings.Load(Settings.Load()) : DefinitionSettings.Load(DefinitionSettings.FromFile(settingsFile));
            var file = parse.GetValue(events);
            IReadOnlyList<NurtureMessage> messages;
            string from;
            if (file is null)
            {
                var database = Settings.Database(Settings.Load());
                database.Migrate();
                messages = await new LeadStore(database).ReadAllEventsAsync(cancel);
                from = database.Describe();
                if (messages.Count == 0) throw new ArgumentException($"calibrate: {from} holds no events yet; ingest some first, or give an events file.");
            }
            else
            {
                using var reader = ReplayCommand.OpenEvents(file);
                var (read, rejected) = await ReplayCommand.ReadAsync(reader, cancel);
                if (rejected.Count > 0) throw new ArgumentException($"calibrate: {rejected.Count} line(s) of '{file.Name}' cannot be read, the first: line {rejected[0].Line}: {rejected[0].Reason}");
                messages = read;
                from = file.Name == "-" ? "standard input" : file.Name;
            }

            var options = new CalibrationOptions
            {
                HeldOutShare = parse.GetValue(heldOut), TargetMqlRate = parse.GetValue(mqlRate), TargetPrecision = parse.GetValue(precision),
                L2 = parse.GetValue(l2), Version = parse.GetValue(version),
            };
            CalibrationResult result;
            try
            {
                result = Calibration.Run(messages.ToList(), current, options);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"calibrate: {e.Message}", e);
            }

            var target = parse.GetValue(output);
            var refused = target is not null && result.TooThin && !parse.GetValue(force);
            if (target is not null && !refused)
            {
                var root = new JsonObject { ["Nurture"] = new JsonObject { ["Definition"] = JsonSerializer.SerializeToNode(result.Proposal, DefinitionJson) } };
                await File.WriteAllTextAsync(target.FullName, root.ToJsonString(DefinitionJson) + "\n", cancel);
            }

            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    from,
                    outcome = "won vs lost deals: each lead with a deal decided, taken up by sales at least Value:SalesCycleDays before the latest event; its features as they stood before sales first acted",
                    result.Data,
                    result.TooThin,
                    result.Notes,
                    result.Points,
                    result.Threshold,
                    result.Current,
                    result.Proposed,
                    written = target is not null && !refused ? target.FullName : null,
                }, ReplayCommand.OutputOptions));
            }
            else
            {
                Console.Out.Write(Text(result, from, target is not null && !refused ? target.Name : null));
            }
            if (refused)
            {
                await Console.Error.WriteLineAsync($"calibrate: did not write '{target!.Name}': {result.Data.TrainingCustomers} customers among the training leads are too few to trust (fewer than 30). --force writes it anyway.");
                return 2;
            }
            return 0;
        });
        return command;
    }

    private static string Text(CalibrationResult r, string from, string? written)
    {
        var c = CultureInfo.InvariantCulture;
        var d = r.Data;
        var text = new StringBuilder();
        text.AppendLine(c, $"calibrate ({from}): {d.Leads:N0} leads, {d.TakenUpBySales:N0} taken up by sales, {d.Deals:N0} with a won or lost deal, taken up at least a sales cycle before the latest event ({d.LatestEvent:yyyy-MM-dd}).");
        text.AppendLine(c, $"Outcome: the deal won (not lost). Fitted on {d.Training:N0} leads captured before {d.HeldOutFrom:yyyy-MM-dd} ({d.TrainingCustomers} won); judged on the {d.HeldOut:N0} captured since ({d.HeldOutCustomers} won).");
        text.AppendLine();
        text.AppendLine(c, $"  {"rule",-46} {"current",8} {"proposed",9} {"log-odds",9} {"leads",6}");
        foreach (var p in r.Points.Where(p => p.TrainingLeadsWithIt > 0 || p.Current != p.Proposed))
        {
            text.AppendLine(c, $"  {p.Setting,-46} {p.Current,8:0.#} {p.Proposed,9:0.#} {p.Weight,9:0.00} {p.TrainingLeadsWithIt,6}{(p.LittleData ? "  (little data: stays near the current points)" : "")}");
        }
        var unseen = r.Points.Count(p => p.TrainingLeadsWithIt == 0 && p.Current == p.Proposed);
        if (unseen > 0) text.AppendLine(c, $"  … and {unseen} rules no training lead matched, kept as they are.");
        var t = r.Threshold;
        text.AppendLine();
        text.AppendLine(c, $"Threshold: {t.Current:0.#} → {t.Proposed:0.#} for the target {t.Target} {t.TargetValue:P1}: on the training leads {t.TrainingMqlRate:P1} become MQLs{(t.TrainingPrecision is { } won ? $" and {won:P1} of them win" : "")}.");
        text.AppendLine();
        text.AppendLine(c, $"Held-out leads (captured since {d.HeldOutFrom:yyyy-MM-dd})");
        text.AppendLine(c, $"  {"",-34} {"current " + Versioned(r.Current),-36} {"proposed " + Versioned(r.Proposed)}");
        text.AppendLine(c, $"  {"AUC (won vs lost deals)",-34} {Auc(r.Current.Auc),-36} {Auc(r.Proposed.Auc)}");
        text.AppendLine(c, $"  {"MQLs",-34} {$"{r.Current.Mqls} ({r.Current.MqlRate:P1} of leads)",-36} {r.Proposed.Mqls} ({r.Proposed.MqlRate:P1} of leads)");
        text.AppendLine(c, $"  {"MQL value",-34} {Value(r.Current.MqlValue),-36} {Value(r.Proposed.MqlValue)}");
        text.AppendLine(c, $"  {"",-34} {$"{r.Current.MqlValue.Customers} of {r.Current.MqlValue.Mqls} MQLs won",-36} {r.Proposed.MqlValue.Customers} of {r.Proposed.MqlValue.Mqls} MQLs won");
        text.AppendLine("  Calibration by score band (score: predicted → observed win rate, leads):");
        foreach (var (name, judged) in new[] { ("current", r.Current), ("proposed", r.Proposed) })
        {
            text.AppendLine(c, $"    {name,-9} {string.Join("   ", judged.Bands.Select(b => $"{b.From:0}–{b.To:0}: {b.Predicted:P0} → {b.Observed:P0} ({b.Leads})"))}");
        }
        if (r.Notes.Count > 0) text.AppendLine();
        foreach (var note in r.Notes) text.AppendLine(c, $"Note: {note}");
        text.AppendLine();
        text.AppendLine(written is null
            ? "Nothing was written; --out proposal.json writes the proposal."
            : $"Wrote {written} (Nurture:Definition, version {r.Proposal.Version}). Check it on the whole history: `simulate {written}`.");
        return text.ToString();
    }

    private static string Versioned(HeldOutJudgement j) => j.Definition.Split(' ')[^1];

    private static string Auc(double? auc) => auc is { } a ? a.ToString("0.000", CultureInfo.InvariantCulture) : "n/a (needs won and lost)";

    private static string Value(ValueEstimate v) =>
        $"{ReportCommand.Money(v.Value, v.Currency)} ({ReportCommand.Money(v.ValueLow, v.Currency)} – {ReportCommand.Money(v.ValueHigh, v.Currency)})";
}
