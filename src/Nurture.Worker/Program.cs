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

try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is DefinitionException or SettingsException or FileNotFoundException or ArgumentException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}
