using System.CommandLine;
using Nurture.Core;
using Nurture.Worker.Cli;

var root = new RootCommand("Nurture: turns lead events into MQL decisions, nurture emails and what an MQL is worth.")
{
    ReplayCommand.Create(),
    SampleCommand.Create(),
    DefinitionCommand.Create(),
    MigrateCommand.Create(),
    IngestCommand.Create(),
};

root.SetAction(_ =>
{
    // Until the long-running worker lands (bus, nurture emails, HTTP API: issues 4-7), say what there is to run.
    Console.Error.WriteLine("The long-running worker (event bus, nurture emails, HTTP API) is not part of this build yet.");
    Console.Error.WriteLine("Run a command instead, e.g. `ingest samples/events.ndjson` or `replay samples/events.ndjson`; `--help` lists them all.");
    return 2;
});

try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is DefinitionException or SettingsException or FileNotFoundException or ArgumentException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}
