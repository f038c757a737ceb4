using System.CommandLine;
using System.Data.Common;
using Nurture.Core;
using Nurture.Worker;
using Nurture.Worker.Cli;

var root = new RootCommand("Nurture: turns lead events into MQL decisions, nurture emails and what an MQL is worth. With no command (or `run`) it runs the worker; --urls sets where HTTP listens and any setting can be given as --Section:Key=value.")
{
    WorkerCommand.Create("run"),
    ReplayCommand.Create(),
    SampleCommand.Create(),
    DefinitionCommand.Create(),
    MigrateCommand.Create(),
    IngestCommand.Create(),
    DemoCommand.Create(),
    ReportCommand.Create(),
    ForecastCommand.Create(),
    SimulateCommand.Create(),
    CalibrateCommand.Create(),
    HealthCommand.Create(),
    PreviewCommand.Create(),
    ExperimentCommand.Create(),
};
// No command runs the worker, with the same options as `run`.
WorkerCommand.AddTo(root);

try
{
    var parse = root.Parse(args);
    var command = parse.CommandResult.Command;
    var name = command == root ? "nurture" : command.Name;
    if (parse.Errors.Count > 0)
    {
        foreach (var error in parse.Errors) await Console.Error.WriteLineAsync($"{name}: {error.Message}");
        await Console.Error.WriteLineAsync($"See `{(command == root ? "" : name + " ")}--help`.");
        return 2;
    }
    // Every command takes settings as --Section:Key=value (as the worker does); anything else it does not know is a mistake.
    var (settings, mistake) = StrictCommandLine.Check(parse, root);
    if (mistake is not null)
    {
        await Console.Error.WriteLineAsync(mistake);
        return 2;
    }
    Settings.CommandLine = settings;
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
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
catch (DbException e)
{
    await Console.Error.WriteLineAsync($"The database does not answer: {e.Message}\nCheck ConnectionStrings:Nurture and Nurture:Database:Provider, and that the server runs.");
    return 3;
}
catch (MassTransit.ConnectionException e)
{
    await Console.Error.WriteLineAsync($"The message broker does not answer: {e.Message}\nCheck ConnectionStrings:RabbitMq and that RabbitMQ runs, or use Nurture:Bus:Transport=InMemory.");
    return 3;
}
