using System.CommandLine;

namespace Nurture.Worker.Cli;

/// <summary>
/// `run`, or no command at all: the long-running worker. Only --urls, --feed and settings (--Section:Key=value) reach it;
/// <see cref="StrictCommandLine"/> turns anything else away before the worker takes a port.
/// </summary>
public static class WorkerCommand
{
    public static Command Create(string name)
    {
        var command = new Command(name, "Run the worker (what no command does): consume events, dispatch nurture emails, serve the API, the dashboard and /metrics.");
        AddTo(command);
        return command;
    }

    public static void AddTo(Command command)
    {
        var urls = new Option<string?>("--urls") { Description = "Where HTTP listens, e.g. http://0.0.0.0:5080 (several separated by ';')." };
        var feed = new Option<FileInfo?>("--feed") { Description = "Publish the events of this NDJSON file onto the bus once the worker runs (how events reach the in-memory bus)." };
        command.Options.Add(urls);
        command.Options.Add(feed);
        // Settings (--Section:Key=value) arrive as unmatched tokens; StrictCommandLine checks that nothing else does.
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, cancel) => WorkerHost.RunAsync(HostArguments(parse.GetValue(urls)), parse.GetValue(feed), cancel));
    }

    /// <summary>The command line ASP.NET's host reads: the settings, and --urls when given.</summary>
    public static string[] HostArguments(string? urls) =>
        urls is null ? [.. Settings.CommandLine] : [.. Settings.CommandLine, "--urls", urls];
}
