using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Messaging;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests;

public class When_the_worker_reads_its_settings
{
    private static IConfiguration Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Should_show_in_the_example_file_the_definition_the_worker_runs_with()
    {
        var example = new ConfigurationBuilder().AddJsonFile(Path.Combine(Repository.Root, "appsettings.example.json")).Build();

        var fromFile = DefinitionSettings.Load(example);

        Assert.Equal(Canonical(DefaultDefinition.Create()), Canonical(fromFile));
        Assert.Equal(DatabaseProvider.Sqlite, Settings.Database(example).Provider);
    }

    [Fact]
    public void Should_document_every_setting_of_the_example_file_in_the_readme_configuration_reference()
    {
        var example = new ConfigurationBuilder().AddJsonFile(Path.Combine(Repository.Root, "appsettings.example.json")).Build();
        var readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        var reference = readme[readme.IndexOf("## Configuration reference", StringComparison.Ordinal)..];

        var keys = example.AsEnumerable().Where(p => p.Value is not null).Select(p => p.Key)
            .Select(k => k.StartsWith(Definition.Section + ":", StringComparison.Ordinal) ? Definition.Section : k)
            .Select(k => System.Text.RegularExpressions.Regex.Replace(k, @":\d+$", ""))
            .Distinct().ToList();

        Assert.Contains("Nurture:Email:Smtp:Host", keys);
        Assert.All(keys, key => Assert.Contains($"`{key}`", reference, StringComparison.Ordinal));
    }

    [Fact]
    public void Should_read_every_bus_setting_of_the_example_file_as_the_defaults()
    {
        var example = new ConfigurationBuilder().AddJsonFile(Path.Combine(Repository.Root, "appsettings.example.json")).Build();

        Assert.Equal(new BusSettings(), BusSettings.Load(example));
        Assert.Equal(new BusSettings(), BusSettings.Load(Config()));
    }

    [Theory]
    [InlineData("Nurture:Bus:Transport", "Kafka", "Nurture:Bus:Transport: 'Kafka' is not a transport; use InMemory or RabbitMq.")]
    [InlineData("Nurture:Bus:Transport", "1", "Nurture:Bus:Transport: '1' is not a transport")]
    [InlineData("ConnectionStrings:RabbitMq", "http://localhost:15672", "ConnectionStrings:RabbitMq: 'http://localhost:15672' is not an amqp:// URI")]
    [InlineData("Nurture:Bus:Prefetch", "0", "Nurture:Bus:Prefetch: '0' must be a whole number from 1 to 10000.")]
    [InlineData("Nurture:Bus:Prefetch", "50", "Nurture:Bus:Prefetch: 50 is below Nurture:Bus:BatchSize (100)")]
    [InlineData("Nurture:Bus:BatchSize", "many", "Nurture:Bus:BatchSize: 'many' must be a whole number")]
    [InlineData("Nurture:Bus:Queue", "two words", "Nurture:Bus:Queue: 'two words' is not a usable name")]
    public void Should_name_the_bus_setting_that_cannot_work(string key, string value, string message)
    {
        var error = Assert.Throws<SettingsException>(() => BusSettings.Load(Config((key, value))));
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-1", "Nurture:Import:GraceHours: -1 is not a number of hours from 0 to 87600.")]
    [InlineData("soon", "Nurture:Import:GraceHours")]
    public async Task Should_stop_the_worker_at_start_naming_a_bad_import_setting(string value, string message)
    {
        await using var app = WorkerHost.Build(["--urls", "http://127.0.0.1:0"], c => c.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Nurture"] = $"Data Source={Path.Combine(Directory.CreateTempSubdirectory("nurture-settings-").FullName, "n.db")}",
            ["Nurture:Schedule:Enabled"] = "false",
            ["Nurture:Import:GraceHours"] = value,
        }));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => app.StartAsync());

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_read_the_rejections_setting_of_the_example_file_as_the_default()
    {
        var example = new ConfigurationBuilder().AddJsonFile(Path.Combine(Repository.Root, "appsettings.example.json")).Build();

        var fromFile = example.GetSection(RejectionOptions.Section).Get<RejectionOptions>();

        Assert.NotNull(fromFile);
        Assert.Equal(new RejectionOptions().MaxPayloadBytes, fromFile.MaxPayloadBytes);
    }

    [Theory]
    [InlineData("100", "Nurture:Rejections:MaxPayloadBytes: 100 is not a number of bytes from 256 to 16777216.")]
    [InlineData("lots", "Nurture:Rejections:MaxPayloadBytes")]
    public async Task Should_stop_the_worker_at_start_naming_a_bad_rejections_setting(string value, string message)
    {
        await using var app = WorkerHost.Build(["--urls", "http://127.0.0.1:0"], c => c.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Nurture"] = $"Data Source={Path.Combine(Directory.CreateTempSubdirectory("nurture-settings-").FullName, "n.db")}",
            ["Nurture:Schedule:Enabled"] = "false",
            ["Nurture:Rejections:MaxPayloadBytes"] = value,
        }));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => app.StartAsync());

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_take_the_broker_from_the_connection_string_and_never_show_its_password()
    {
        var settings = BusSettings.Load(Config(("Nurture:Bus:Transport", "rabbitmq"), ("ConnectionStrings:RabbitMq", "amqp://nurture:s3cret@broker:5672/marketing")));

        Assert.Equal(BusTransport.RabbitMq, settings.Transport);
        Assert.Equal("broker", settings.RabbitMq.Host);
        Assert.DoesNotContain("s3cret", settings.Describe(), StringComparison.Ordinal);
        Assert.Contains("nurture:***@broker", settings.Describe(), StringComparison.Ordinal);
    }

    /// <summary>JSON with object keys sorted: configuration reads dictionary keys in its own order.</summary>
    private static string Canonical(Definition definition)
    {
        static JsonNode? Sort(JsonNode? node) => node switch
        {
            JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sort(p.Value?.DeepClone())))),
            JsonArray a => new JsonArray(a.Select(x => Sort(x?.DeepClone())).ToArray()),
            _ => node?.DeepClone(),
        };
        return Sort(JsonSerializer.SerializeToNode(definition))!.ToJsonString();
    }

    [Theory]
    [InlineData("Oracle", null, "Nurture:Database:Provider: 'Oracle' is not a provider")]
    [InlineData("PostgreSql", null, "ConnectionStrings:Nurture: missing; the PostgreSql provider needs a connection string")]
    [InlineData("SqlServer", "", "ConnectionStrings:Nurture: missing; the SqlServer provider needs a connection string")]
    [InlineData("PostgreSql", "Hots=x;;=", "ConnectionStrings:Nurture: not a valid PostgreSql connection string")]
    public void Should_fail_on_a_bad_database_setting_naming_it(string provider, string? connectionString, string expected)
    {
        var config = Config(("Nurture:Database:Provider", provider), ("ConnectionStrings:Nurture", connectionString));

        var error = Assert.Throws<SettingsException>(() => Settings.Database(config));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Host=db;Username=nurture", 100, true)]
    [InlineData("Host=db;Username=nurture;Max Auto Prepare=0;No Reset On Close=false", 0, false)]
    [InlineData("Host=db;Username=nurture;MaxAutoPrepare=20;NoResetOnClose=False", 20, false)]
    public void Should_prepare_statements_and_skip_the_pool_reset_on_postgresql_unless_the_connection_string_says_otherwise(
        string connectionString, int maxAutoPrepare, bool noResetOnClose)
    {
        var database = Settings.Database(Config(("Nurture:Database:Provider", "PostgreSql"), ("ConnectionStrings:Nurture", connectionString)));

        var used = new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString);
        Assert.Equal(maxAutoPrepare, used.MaxAutoPrepare);
        Assert.Equal(noResetOnClose, used.NoResetOnClose);
        Assert.Equal("db", used.Host);
    }

    [Fact]
    public void Should_default_to_sqlite_in_the_working_folder()
    {
        var database = Settings.Database(Config());

        Assert.Equal(DatabaseProvider.Sqlite, database.Provider);
        Assert.Contains("nurture.db", database.ConnectionString, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_reject_a_configured_definition_naming_the_setting()
    {
        var config = Config(("Nurture:Definition:Scoring:HalfLifeDays", "-1"));

        var error = Assert.Throws<DefinitionException>(() => DefinitionSettings.Load(config));

        Assert.Contains("Nurture:Definition:Scoring:HalfLifeDays: (-1) must be zero (no decay) or positive.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_change_only_what_single_definition_settings_name()
    {
        var config = Config(("Nurture:Definition:Qualification:MqlThreshold", "60"), ("Nurture:Definition:Scoring:Activities:demoRequested:Points", "35"),
            ("Nurture:Definition:Nurture:GoalStages:0", "Customer"));

        var definition = DefinitionSettings.Load(config);

        var builtIn = DefaultDefinition.Create();
        Assert.Equal(60, definition.Qualification.MqlThreshold);
        Assert.Equal(35, definition.Scoring.Activities["demoRequested"].Points);
        Assert.Equal(builtIn.Scoring.Activities["trialStarted"].Points, definition.Scoring.Activities["trialStarted"].Points);
        Assert.Equal([Contracts.LeadStage.Customer], definition.Nurture.GoalStages); // a list given is the list
        Assert.Equal(builtIn.Nurture.Tracks.Count, definition.Nurture.Tracks.Count);
        Assert.Equal(builtIn.Version, definition.Version);
    }

    [Fact]
    public void Should_take_a_whole_definition_with_a_version_as_it_is()
    {
        var whole = new ConfigurationBuilder().AddJsonFile(Path.Combine(Repository.Root, "appsettings.example.json")).AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Nurture:Definition:Version"] = "2026-12.1",
        }).Build();
        var withoutTutorials = new ConfigurationBuilder().AddInMemoryCollection(whole.GetSection("Nurture:Definition").AsEnumerable()
            .Where(p => p.Value is not null && !p.Key.Contains("Activities:tutorialViewed", StringComparison.Ordinal))).Build();

        var definition = DefinitionSettings.Load(withoutTutorials);

        Assert.Equal("2026-12.1", definition.Version);
        Assert.False(definition.Scoring.Activities.ContainsKey("tutorialViewed")); // left out of a whole definition: gone
    }
}
