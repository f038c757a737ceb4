using System.CommandLine;
using Nurture.Core;
using Nurture.Worker;
using Nurture.Worker.Cli;

var root = new RootCommand("Nurture: turns lead events into MQL decisions, nurture emails and what an MQL is worth. With no command it runs the worker.")
{
    ReplayCommand.Create(),
    SampleCommand.Create(),
    DefinitionCommand.Create(),
    MigrateCommand.Create(),
    IngestCommand.Create(),
    DemoCommand.Create(),
    ReportCommand.Create(),
    ForecastCommand.Create(),
    SimulateCommand.Create(),
};

// No command runs the worker. Options the worker's host understands (--urls, --Nurture:Bus:Transport=RabbitMq, ...) pass through.
var feed = new Option<FileInfo?>("--feed") { Description = "Publish the events of this NDJSON file onto the bus once the worker runs (how events reach the in-memory bus)." };
root.Options.Add(feed);
root.TreatUnmatchedTokensAsErrors = false;
root.SetAction((parse, cancel) => WorkerHost.RunAsync([.. parse.UnmatchedTokens], parse.GetValue(feed), cancel));

try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is DefinitionException or SettingsException or Nurture.Worker.Email.TemplateException or FileNotFoundException or ArgumentException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}
catch (IOException e) when (e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("Failed to bind", StringComparison.OrdinalIgnoreCase))
{
    await Console.Error.WriteLineAsync($"{e.Message}\nAnother program (another worker, or a demo still running) listens there. Stop it, or choose another address: --urls http://localhost:5081");
    return 2;
}
