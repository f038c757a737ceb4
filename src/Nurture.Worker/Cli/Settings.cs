using Microsoft.Extensions.Configuration;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>Thrown for a setting that cannot work; the message names the setting and what to do.</summary>
public sealed class SettingsException(string message) : Exception(message);

/// <summary>The worker's settings as its commands read them: appsettings.json in the working folder, then the environment.</summary>
public static class Settings
{
    /// <summary>Settings given on the command line as --Section:Key=value (or --Section:Key value); they win over the rest.</summary>
    public static IReadOnlyList<string> CommandLine { get; set; } = [];

    public static IConfiguration Load(string? settingsFile = null)
    {
        var builder = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath("appsettings.json"), optional: true);
        if (settingsFile is not null)
        {
            if (!File.Exists(settingsFile)) throw new SettingsException($"The settings file '{settingsFile}' does not exist.");
            builder.AddJsonFile(Path.GetFullPath(settingsFile), optional: false);
        }
        return builder.AddEnvironmentVariables().AddCommandLine([.. CommandLine]).Build();
    }

    /// <summary>Splits tokens a command did not know into settings (--Section:Key=value, --Section:Key value) and the rest.</summary>
    public static (List<string> Settings, List<string> Unknown) SplitCommandLine(IReadOnlyList<string> tokens)
    {
        var settings = new List<string>();
        var unknown = new List<string>();
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var key = token.StartsWith("--", StringComparison.Ordinal) ? token[2..].Split('=')[0] : null;
            if (key is null || !key.Contains(':', StringComparison.Ordinal))
            {
                unknown.Add(token);
                continue;
            }
            settings.Add(token);
            if (!token.Contains('=', StringComparison.Ordinal) && i + 1 < tokens.Count && !tokens[i + 1].StartsWith("--", StringComparison.Ordinal)) settings.Add(tokens[++i]);
        }
        return (settings, unknown);
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

/// <summary>Reading one setting, with the error that names it when the value cannot work.</summary>
public static class SettingValues
{
    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when unset.</summary>
    public static int WholeNumber(this IConfigurationSection section, string key, int fallback, int min, int max)
    {
        var value = section[key];
        if (value is null) return fallback;
        return int.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new SettingsException($"{section.Path}:{key}: '{value}' must be a whole number from {min} to {max}.");
    }

    /// <summary>true or false, or <paramref name="fallback"/> when unset.</summary>
    public static bool Flag(this IConfigurationSection section, string key, bool fallback)
    {
        var value = section[key];
        if (value is null) return fallback;
        return bool.TryParse(value, out var b) ? b : throw new SettingsException($"{section.Path}:{key}: '{value}' must be true or false.");
    }
}
