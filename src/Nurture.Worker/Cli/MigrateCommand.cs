using System.CommandLine;

namespace Nurture.Worker.Cli;

/// <summary>`migrate`: applies the database migrations for the configured provider and exits.</summary>
public static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Apply the database migrations (Nurture:Database:Provider, ConnectionStrings:Nurture) and exit.");
        command.SetAction(_ =>
        {
            var database = Settings.Database(Settings.Load());
            var applied = database.Migrate(log: Console.Out.WriteLine);
            Console.Out.WriteLine(applied.Count == 0
                ? $"The {database.Provider} database is up to date ({database.Scripts().Count} migrations)."
                : $"Applied {applied.Count} migration(s) to the {database.Provider} database: {string.Join(", ", applied)}.");
            return 0;
        });
        return command;
    }
}
