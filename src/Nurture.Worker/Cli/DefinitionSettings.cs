using Microsoft.Extensions.Configuration;
using Nurture.Core;

namespace Nurture.Worker.Cli;

/// <summary>Reads the qualification definition from configuration (section Nurture:Definition), or the built-in one.</summary>
public static class DefinitionSettings
{
    /// <summary>
    /// A whole definition (one with a Version, as `definition` prints it) replaces the built-in one, so removing a track
    /// or an activity in the file removes it. Single settings without a Version (an environment variable such as
    /// Nurture__Definition__Qualification__MqlThreshold=60) change the built-in definition: a list they touch is replaced
    /// by what they give, a dictionary entry is changed or added, everything else stays.
    /// </summary>
    public static Definition Load(IConfiguration configuration)
    {
        var section = configuration.GetSection(Definition.Section);
        if (!section.Exists()) return DefaultDefinition.Create().EnsureValid();
        var source = section["Version"] is null ? Overlay(section) : section;
        var definition = new Definition();
        try
        {
            source.Bind(definition, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new DefinitionException([$"{Definition.Section}: {e.Message}"]);
        }
        return definition.EnsureValid();
    }

    /// <summary>The built-in definition as settings, with the given ones laid over it (lists they touch replaced whole).</summary>
    private static IConfiguration Overlay(IConfigurationSection section)
    {
        var given = section.AsEnumerable(makePathsRelative: true).Where(p => p.Value is not null).ToList();
        var lists = given.Select(p => ListPath(p.Key)).OfType<string>().Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var builtIn = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(DefaultDefinition.Create(), DefinitionJson))).Build()
            .AsEnumerable(makePathsRelative: true)
            .Where(p => p.Value is not null && !lists.Any(l => p.Key.StartsWith(l + ":", StringComparison.OrdinalIgnoreCase)));
        return new ConfigurationBuilder().AddInMemoryCollection(builtIn).AddInMemoryCollection(given).Build();
    }

    /// <summary>"Nurture:Tracks:0:Name" → "Nurture:Tracks": the list a key is an element of, if any.</summary>
    private static string? ListPath(string key)
    {
        var parts = key.Split(':');
        var index = Array.FindIndex(parts, p => p.Length > 0 && p.All(char.IsAsciiDigit));
        return index > 0 ? string.Join(':', parts[..index]) : null;
    }

    private static readonly System.Text.Json.JsonSerializerOptions DefinitionJson = new()
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    /// <summary>Settings from one JSON file only: a proposed definition, judged on its own.</summary>
    public static IConfiguration FromFile(string? path)
    {
        var builder = new ConfigurationBuilder();
        if (path is not null)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"The settings file '{path}' does not exist.", path);
            builder.AddJsonFile(Path.GetFullPath(path), optional: false);
        }
        return builder.Build();
    }
}
