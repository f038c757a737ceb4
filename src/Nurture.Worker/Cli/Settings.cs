using Microsoft.Extensions.Configuration;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>Thrown for a setting that cannot work; the message names the setting and what to do.</summary>
public sealed class SettingsException(string message) : Exception(message);

/// <summary>The worker's settings as its commands read them: appsettings.json in the working folder, then the environment.</summary>
public static class Settings
{
    public static IConfiguration Load(string? settingsFile = null)
    {
        var builder = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath("appsettings.json"), optional: true);
        if (settingsFile is not null)
        {
            if (!File.Exists(settingsFile)) throw new SettingsException($"The settings file '{settingsFile}' does not exist.");
            builder.AddJsonFile(Path.GetFullPath(settingsFile), optional: false);
        }
        return builder.AddEnvironmentVariables().Build();
    }

    /// <summary>Nurture:Database:Provider and ConnectionStrings:Nurture; SQLite in the working folder when neither is set.</summary>
    public static Database Database(IConfiguration configuration)
    {
        var raw = configuration[$"{DatabaseOptions.Section}:Provider"];
        var provider = DatabaseProvider.Sqlite;
        if (!string.IsNullOrWhiteSpace(raw) && (!Enum.TryParse(raw, ignoreCase: true, out provider) || !Enum.IsDefined(provider) || raw.Any(char.IsDigit)))
        {
            throw new SettingsException($"{DatabaseOptions.Section}:Provider: '{raw}' is not a provider; use Sqlite, PostgreSql or SqlServer.");
        }
        var connectionString = configuration.GetConnectionString("Nurture");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            if (provider != DatabaseProvider.Sqlite)
            {
                throw new SettingsException($"ConnectionStrings:Nurture: missing; the {provider} provider needs a connection string (set ConnectionStrings__Nurture in the environment).");
            }
            connectionString = DatabaseOptions.DefaultSqlite;
        }
        try
        {
            return new Database(provider, connectionString);
        }
        catch (ArgumentException e)
        {
            throw new SettingsException($"ConnectionStrings:Nurture: not a valid {provider} connection string ({e.Message}).");
        }
    }
}
