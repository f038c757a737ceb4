using System.CommandLine;
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
    /// NDJSON through EventJson's reader of every way in, line by line. A file or standard input is read as bytes, so
    /// invalid UTF-8 and a byte-order mark are judged by that reader exactly as on the bus and over HTTP.
    /// </summary>
    public static async Task<(List<NurtureMessage> Events, List<RejectedLine> Rejected)> ReadAsync(TextReader reader, CancellationToken cancel, Progress? progress = null)
    {
        var messages = new List<NurtureMessage>();
        var rejected = new List<RejectedLine>();
        void Read(ReadOnlySpan<byte> line, int number)
        {
            line = line.Trim(" \t\r"u8);
            if (line.IsEmpty) return;
            if (EventJson.TryParseIncoming(line, out var message, out var error)) messages.Add(message);
            else rejected.Add(new RejectedLine(number, error));
        }
        if (reader is StreamReader { BaseStream: var stream })
        {
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancel);
            ReadOnlyMemory<byte> rest = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
            for (var number = 1; !rest.IsEmpty; number++)
            {
                var end = rest.Span.IndexOf((byte)'\n');
                Read((end < 0 ? rest : rest[..end]).Span, number);
                if (progress is not null && number % 1000 == 0) progress.Report((buffer.Length - rest.Length) / 1024);
                rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
            }
            return (messages, rejected);
        }
        var n = 0;
        while (await reader.ReadLineAsync(cancel) is { } text) Read(System.Text.Encoding.UTF8.GetBytes(text), ++n);
        return (messages, rejected);
    }

    /// <summary>The NDJSON events a command reads: a file, or standard input for '-' or no file.</summary>
    public static TextReader OpenEvents(FileInfo? file) =>
        file is null || file.Name == "-" ? new StreamReader(Console.OpenStandardInput())
        : file.Exists ? new StreamReader(file.OpenRead())
        : throw new FileNotFoundException($"The events file '{file.FullName}' does not exist. Give an NDJSON file, or '-' to read standard input.");

}
