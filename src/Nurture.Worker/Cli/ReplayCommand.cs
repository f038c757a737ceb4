using System.Buffers;
using System.CommandLine;
using System.IO.Pipelines;
using System.Text.Json;
using System.Text.Json.Serialization;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Cli;

/// <summary>
/// `replay`: events as NDJSON (a file or stdin) through the domain, printed as JSON: each lead's final stage,
/// score and explanation, and a summary. Lines that cannot be read are listed with their line number and reason.
/// </summary>
public static class ReplayCommand
{
    /// <summary>The commands' JSON: <see cref="Api.LeadJson"/>'s shape, indented.</summary>
    public static JsonSerializerOptions OutputOptions => Api.LeadJson.Indented;

    public static Command Create()
    {
        var events = new Argument<FileInfo?>("events") { Description = "NDJSON file of events in the documented JSON form; '-' or nothing reads standard input.", Arity = ArgumentArity.ZeroOrOne };
        var settings = new Option<FileInfo?>("--settings") { Description = "A settings file (appsettings shape) whose Nurture:Definition section is the definition to test; the built-in one otherwise." };
        var now = new Option<DateTimeOffset?>("--now") { Description = "Score as of this time (ISO 8601); the latest event's time by default." };
        var command = new Command("replay", "Run events through the domain and print each lead's stage, score and explanation, and a summary, as JSON.") { events, settings, now };
        command.SetAction(async (parse, cancel) =>
        {
            var definition = DefinitionSettings.Load(DefinitionSettings.FromFile(parse.GetValue(settings)?.FullName));
            var file = parse.GetValue(events);
            using var reader = OpenEvents(file);
            using var progress = ReadingProgress("replay", file);
            var (messages, rejected) = await ReadAsync(reader, cancel, progress);
            progress?.Report(progress.Total);
            progress?.Done($"{messages.Count:N0} events read; replaying");
            var result = Replay.Run(messages, definition, parse.GetValue(now));
            var output = new
            {
                Definition = new { definition.Name, definition.Version },
                Rejected = rejected,
                result.Summary,
                Leads = result.Leads.Select(Api.LeadJson.Of).ToList(),
            };
            await using var stdout = Console.OpenStandardOutput();
            await JsonSerializer.SerializeAsync(stdout, output, OutputOptions, cancel);
            await stdout.WriteAsync("\n"u8.ToArray(), cancel);
            if (rejected.Count > 0) await Console.Error.WriteLineAsync($"{rejected.Count} line(s) could not be read; see \"rejected\" in the output.");
            return 0;
        });
        return command;
    }

    public sealed record RejectedLine(int Line, string Reason);

    /// <summary>Files from this size on show how far reading them is (on standard error).</summary>
    public const long BigFile = 1024 * 1024;

    /// <summary>Progress over reading a big events file, in KiB; none for standard input or a small file.</summary>
    public static Progress? ReadingProgress(string what, FileInfo? file) =>
        file is { Exists: true, Length: >= BigFile } ? new Progress(what, file.Length / 1024, "KiB") : null;

    /// <summary>
    /// NDJSON through EventJson's reader of every way in, line by line, all of it in memory (for the domain's replay).
    /// </summary>
    public static async Task<(List<NurtureMessage> Events, List<RejectedLine> Rejected)> ReadAsync(TextReader reader, CancellationToken cancel, Progress? progress = null)
    {
        var messages = new List<NurtureMessage>();
        var rejected = new List<RejectedLine>();
        await foreach (var line in ReadLinesAsync(reader, cancel))
        {
            if (line.Event is { } message) messages.Add(message);
            else rejected.Add(new RejectedLine(line.Number, line.Error!));
            if (progress is not null && line.Number % 1000 == 0) progress.Report(line.End / 1024);
        }
        return (messages, rejected);
    }

    /// <summary>One line of an events file: its number, the event or why it could not be read, and the byte after it.</summary>
    public readonly record struct EventLine(int Number, NurtureMessage? Event, string? Error, long End);

    /// <summary>
    /// NDJSON through EventJson's reader of every way in, line by line, as the lines come: a file of any size takes
    /// the memory of one read buffer and its longest line. A file or standard input is read as bytes, so invalid UTF-8
    /// and a byte-order mark are judged by that reader exactly as on the bus and over HTTP. Blank lines are skipped.
    /// </summary>
    public static async IAsyncEnumerable<EventLine> ReadLinesAsync(TextReader reader, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel)
    {
        var lines = new List<EventLine>();
        var number = 0;
        if (reader is StreamReader { BaseStream: var stream })
        {
            var pipe = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 1 << 20, minimumReadSize: 1 << 18, leaveOpen: true));
            long read = 0;
            try
            {
                while (true)
                {
                    var result = await pipe.ReadAsync(cancel);
                    var buffer = result.Buffer;
                    var consumed = Lines(buffer, result.IsCompleted, ref number, ref read, lines);
                    pipe.AdvanceTo(consumed, buffer.End);
                    foreach (var line in lines) yield return line;
                    lines.Clear();
                    if (result.IsCompleted) break;
                }
            }
            finally
            {
                // Its buffers go back to the pool however the reading ends (the caller stopped, an error, cancelled).
                await pipe.CompleteAsync();
            }
            yield break;
        }
        while (await reader.ReadLineAsync(cancel) is { } text)
        {
            if (Line(System.Text.Encoding.UTF8.GetBytes(text), ++number, 0) is { } line) yield return line;
        }
    }

    /// <summary>The whole lines of the buffer (and the last one without a newline at the end); returns where the rest starts.</summary>
    private static SequencePosition Lines(ReadOnlySequence<byte> buffer, bool last, ref int number, ref long read, List<EventLine> into)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryReadTo(out ReadOnlySequence<byte> text, (byte)'\n'))
        {
            read += text.Length + 1;
            if (Line(text.IsSingleSegment ? text.FirstSpan : text.ToArray(), ++number, read) is { } line) into.Add(line);
        }
        if (last && !reader.End)
        {
            var rest = buffer.Slice(reader.Position);
            read += rest.Length;
            if (Line(rest.IsSingleSegment ? rest.FirstSpan : rest.ToArray(), ++number, read) is { } line) into.Add(line);
            return buffer.End;
        }
        return reader.Position;
    }

    private static EventLine? Line(ReadOnlySpan<byte> text, int number, long end)
    {
        text = text.Trim(" \t\r"u8);
        if (text.IsEmpty) return null;
        return EventJson.TryParseIncoming(text, out var message, out var error)
            ? new EventLine(number, message, null, end)
            : new EventLine(number, null, error, end);
    }

    /// <summary>The NDJSON events a command reads: a file, or standard input for '-' or no file.</summary>
    public static TextReader OpenEvents(FileInfo? file) =>
        file is null || file.Name == "-" ? new StreamReader(Console.OpenStandardInput())
        : file.Exists ? new StreamReader(file.OpenRead())
        : throw new FileNotFoundException($"The events file '{file.FullName}' does not exist. Give an NDJSON file, or '-' to read standard input.");

}
