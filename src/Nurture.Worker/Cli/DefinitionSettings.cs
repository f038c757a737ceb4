using Microsoft.Extensions.Configuration;
using Nurture.Core;

namespace Nurture.Worker.Cli;

/// <summary>Reads the qualification definition from configuration (section Nurture:Definition), or the built-in one.</summary>
public static class DefinitionSettings
{
    /// <summary>A configured definition replaces the built-in one whole, so removing a track in the file removes it.</summary>
    public static Definition Load(IConfiguration configuration)
    {
        var section = configuration.GetSection(Definition.Section);
        if (!section.Exists()) return DefaultDefinition.Create().EnsureValid();
        var definition = new Definition();
        try
        {
            section.Bind(definition, o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new DefinitionException([$"{Definition.Section}: {e.Message}"]);
        }
        return definition.EnsureValid();
    }

    /// <summary>Settings from an optional JSON file plus the environment (Nurture__Definition__…), as the worker reads them.</summary>
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
