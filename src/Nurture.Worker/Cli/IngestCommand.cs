using System.CommandLine;
using System.Text.Json;
using Nurture.Contracts;
using Nurture.Core;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Worker.Leads;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `ingest`: stores NDJSON events in the configured database (SQLite in the working folder by default) through the
/// same store the worker uses, then reports the funnel and MQL value from the database. Running it twice applies nothing twice.
/// </summary>
public static class IngestCommand
{
    public static Command Create()
    {
        var events = new Argument<FileInfo?>("events") { Description = "NDJSON file of events; '-' or nothing reads standard input.", Arity = ArgumentArity.ZeroOrOne };
        // A page that several events touch goes to the log once per commit: 2,000 beat 500 by 10–16 % on SQLite
        // (bench/RESULTS.md, "ingest batches").
        var batch = new Option<int>("--batch") { Description = "Events per transaction.", DefaultValueFactory = _ => 2000 };
        var history = new Option<bool>("--history") { Description = "Record the events as history moved in from another tool: decided and stored, but no nurture email is planned and nothing is published." };
        var command = new Command("ingest", "Store events in the database (migrating it first) and print the funnel and MQL value read back from it, as JSON.") { events, batch, history };
        command.SetAction(async (parse, cancel) =>
        {
            var configuration = Settings.Load();
            var definition = DefinitionSettings.Load(configuration);
            var database = Settings.Database(configuration);
            database.Migrate();
            var store = new LeadStore(database);
            using var services = LeadServices.WithoutBus(database, definition, configuration);
            var mode = parse.GetValue(history) ? EventMode.History : EventMode.Live;
            var handler = services.GetRequiredService<LeadEventHandler>();
            var file = parse.GetValue(events);
            using var reader = ReplayCommand.OpenEvents(file);
            var size = Math.Max(1, parse.GetValue(batch));
            var now = DateTimeOffset.UtcNow;
            var rejected = new List<ReplayCommand.RejectedLine>();
            int applied = 0, duplicates = 0, lines = 0;
            using var progress = new Progress("ingest", await CountLinesAsync(reader, cancel), "events");
            // Stored as it is read, a batch at a time, never the whole file at once: a file of any size takes the memory
            // of one batch. An unreadable line is kept as it comes, so a run that stops halfway has kept it too.
            var pending = new List<NurtureMessage>(size);
            async Task StoreAsync()
            {
                if (pending.Count > 0)
                {
                    var results = await handler.HandleNowAsync(pending, "ingest", cancel, mode);
                    applied += results.Count(r => !r.Duplicate);
                    duplicates += results.Count(r => r.Duplicate);
                    pending = new List<NurtureMessage>(size);
                }
                progress.Report(lines);
            }
            await foreach (var line in ReplayCommand.ReadLinesAsync(reader, cancel))
            {
                lines = line.Number;
                if (line.Event is { } message) pending.Add(message);
                else
                {
                    rejected.Add(new ReplayCommand.RejectedLine(line.Number, line.Error!));
                    await store.RecordRejectedAsync("ingest", $"line {line.Number}: {line.Error}", "", now, cancel);
                }
                if (pending.Count == size) await StoreAsync();
            }
            await StoreAsync();
            progress.Total = lines;
            progress.Done();

            // As of now, like `report` and the API: MQLs count for the close rate once the sales cycle has passed since.
            var cohorts = await store.ReadCohortsAsync(now.AddDays(-definition.Value.SalesCycleDays), cancel);
            var (overall, bySource) = MqlValue.EstimateAll(cohorts.OldEnough, definition.Value);
            var output = new
            {
                Database = database.Provider.ToString(),
                Applied = applied,
                Duplicates = duplicates,
                Rejected = rejected,
                Funnel = await store.ReadFunnelAsync(cancel),
                MqlValue = overall,
                MqlValueBySource = bySource,
            };
            Console.Out.WriteLine(JsonSerializer.Serialize(output, ReplayCommand.OutputOptions));
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The lines of a file, for the progress's total: one pass over its bytes (far faster than storing them), then back to
    /// its start. Nothing for what cannot be read twice (standard input, a pipe, a process substitution): 0, no total.
    /// </summary>
    private static async Task<long> CountLinesAsync(TextReader reader, CancellationToken cancel)
    {
        if (reader is not StreamReader { BaseStream: { CanSeek: true } stream }) return 0;
        var buffer = new byte[1 << 20];
        long lines = 0;
        var endsWithNewline = true;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancel)) > 0)
        {
            lines += buffer.AsSpan(0, read).Count((byte)'\n');
            endsWithNewline = buffer[read - 1] == (byte)'\n';
        }
        stream.Position = 0;
        return endsWithNewline ? lines : lines + 1;
    }
}
