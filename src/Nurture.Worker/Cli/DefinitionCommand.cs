using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nurture.Worker.Cli;

/// <summary>`definition`: prints the qualification definition in force (checked), so marketing and sales read the same text.</summary>
public static class DefinitionCommand
{
    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter() },
    };

    public static Command Create()
    {
        var settings = new Option<FileInfo?>("--settings") { Description = "A settings file whose Nurture:Definition section to check and print; otherwise the one in force (appsettings.json, the environment, the built-in one)." };
        var command = new Command("definition", "Check the qualification definition and print it as JSON (the shape of the Nurture:Definition section).") { settings };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(settings)?.FullName;
            var definition = DefinitionSettings.Load(file is null ? Settings.Load() : DefinitionSettings.FromFile(file));
            Console.Out.WriteLine(JsonSerializer.Serialize(definition, Options));
            return 0;
        });
        return command;
    }
}
