using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Nurture.Worker.Tests;

/// <summary>
/// What can be checked here of the container deployment without a Docker engine: the compose file against the Compose
/// specification's JSON Schema (kept in deploy/compose), and the published app starting from its own folder.
/// </summary>
public class When_nurture_is_deployed_as_people_deploy_services
{
    private static readonly string Root = Repository.Root;

    /// <summary>
    /// The schema names its dialect the old way (http://…/draft/2019-09/schema#); it is Draft 2019-09 under that name,
    /// with its draft-4 style "id" keywords left as the unknown keywords they are there.
    /// </summary>
    private static JsonSchema ComposeSchema()
    {
        var dialect = Dialect.Draft201909.With([], new Uri("http://json-schema.org/draft/2019-09/schema#"), refIgnoresSiblingKeywords: false, allowUnknownKeywords: true);
        var dialects = new DialectRegistry();
        dialects.Register(dialect);
        return JsonSchema.FromText(File.ReadAllText(Path.Combine(Root, "deploy", "compose", "compose-spec.schema.json")), new BuildOptions { DialectRegistry = dialects, Dialect = dialect });
    }

    private static EvaluationResults Validate(JsonNode compose) =>
        ComposeSchema().Evaluate(JsonDocument.Parse(compose.ToJsonString()).RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });

    private static string Failures(EvaluationResults results) =>
        string.Join("\n", (results.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));

    [Fact]
    public void Should_keep_a_compose_file_the_compose_specification_accepts_with_pinned_tags_named_volumes_and_health_gated_start()
    {
        var compose = Yaml.ToJson(File.ReadAllText(Path.Combine(Root, "docker-compose.yml")));

        var results = Validate(compose);

        Assert.True(results.IsValid, Failures(results));
        var services = compose["services"]!.AsObject();
        Assert.Equal(["grafana", "nurture", "nurture-sqlserver", "postgres", "prometheus", "rabbitmq", "sqlserver"], services.Select(s => s.Key).Order(StringComparer.Ordinal));
        foreach (var (name, service) in services)
        {
            var image = service!["image"]!.GetValue<string>();
            var tag = image[(image.LastIndexOf(':') + 1)..];
            // The worker is built here (its base images are pinned in the Dockerfile); every other image is pulled by a pinned tag.
            var built = service["build"] is not null;
            Assert.True(built || (image.Contains(':', StringComparison.Ordinal) && tag.Any(char.IsDigit) && !tag.Contains("latest", StringComparison.Ordinal)), $"{name}: '{image}' is not a pinned tag");
            Assert.True(service["healthcheck"] is not null, $"{name} has no health check");
            foreach (var mount in service["volumes"]?.AsArray() ?? [])
            {
                var source = mount!.GetValue<string>().Split(':')[0];
                Assert.True(source.StartsWith("./", StringComparison.Ordinal) || compose["volumes"]!.AsObject().ContainsKey(source), $"{name}: '{source}' is neither a repository file nor a named volume");
            }
            foreach (var (dependency, condition) in service["depends_on"]?.AsObject() ?? [])
            {
                Assert.Equal("service_healthy", condition!["condition"]!.GetValue<string>());
                Assert.True(services[dependency]!["healthcheck"] is not null, $"{name} waits for {dependency}, which has no health check");
            }
            // Secrets come from the environment: no password, key or connection string password written in the file.
            foreach (var (key, value) in service["environment"]?.AsObject() ?? [])
            {
                var text = value?.ToString() ?? "";
                if (key.Contains("PASSWORD", StringComparison.OrdinalIgnoreCase) || key.EndsWith("Key", StringComparison.Ordinal) || key.EndsWith("__Password", StringComparison.Ordinal))
                {
                    Assert.True(text.Length == 0 || text.StartsWith("${", StringComparison.Ordinal), $"{name}: {key} is written in the file");
                }
                Assert.DoesNotMatch(@"(?i)password=(?!\$\{)", text);
            }
        }
        Assert.Equal("PostgreSql", services["nurture"]!["environment"]!["Nurture__Database__Provider"]!.GetValue<string>());
        Assert.Equal("service_healthy", services["nurture"]!["depends_on"]!["postgres"]!["condition"]!.GetValue<string>());
        Assert.Equal("sqlserver", services["sqlserver"]!["profiles"]![0]!.GetValue<string>());
        Assert.Equal("sqlserver", services["nurture-sqlserver"]!["profiles"]![0]!.GetValue<string>());
        Assert.Null(services["postgres"]!["profiles"]);
        Assert.Equal("Dockerfile", services["nurture"]!["build"]!["dockerfile"]!.GetValue<string>());
        Assert.Contains("nurture-data:/data", services["nurture"]!["volumes"]!.AsArray().Select(v => v!.GetValue<string>()));
    }

    [Fact]
    public void Should_have_a_schema_that_refuses_what_compose_refuses()
    {
        var compose = Yaml.ToJson(File.ReadAllText(Path.Combine(Root, "docker-compose.yml")));
        var misspelt = compose.DeepClone();
        misspelt["services"]!["nurture"]!["healthchek"] = misspelt["services"]!["nurture"]!["healthcheck"]!.DeepClone();
        var badCondition = compose.DeepClone();
        badCondition["services"]!["nurture"]!["depends_on"]!["postgres"]!["condition"] = "service_ready";
        var textRetries = compose.DeepClone();
        textRetries["services"]!["postgres"]!["healthcheck"]!["retries"] = "ten";

        Assert.False(Validate(misspelt).IsValid);
        Assert.False(Validate(badCondition).IsValid);
        Assert.False(Validate(textRetries).IsValid);
    }

    [Fact]
    public void Should_build_the_image_from_pinned_dotnet_images_as_a_non_root_user_with_a_health_check_and_the_templates()
    {
        var dockerfile = File.ReadAllLines(Path.Combine(Root, "Dockerfile"));
        var from = dockerfile.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();

        Assert.Equal(2, from.Count);
        Assert.All(from, f => Assert.Matches(@"^FROM mcr\.microsoft\.com/dotnet/(sdk|aspnet):\d+\.\d+\.\d+ AS \w+$", f));
        Assert.Contains("USER $APP_UID", dockerfile);
        Assert.Contains(dockerfile, l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal) && l.Contains("\"health\"", StringComparison.Ordinal));
        Assert.Contains(dockerfile, l => l.StartsWith("RUN dotnet publish src/Nurture.Worker/", StringComparison.Ordinal));
        // The templates are content of the worker project, so publishing puts them beside the app (/app/Templates).
        Assert.Contains("""<Content Include="Templates/**/*.liquid" CopyToOutputDirectory="PreserveNewest" />""", File.ReadAllText(Path.Combine(Root, "src", "Nurture.Worker", "Nurture.Worker.csproj")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_start_the_published_app_from_its_folder_answer_ready_log_only_json_and_pass_its_own_health_check()
    {
#if DEBUG
        const string Configuration = "Debug";
#else
        const string Configuration = "Release";
#endif
        var publish = Directory.CreateTempSubdirectory("nurture-publish-").FullName;
        var data = Directory.CreateTempSubdirectory("nurture-publish-data-").FullName;
        // From the build the tests run on: what `dotnet publish` adds is the layout (templates, runtime config) this checks.
        var (code, output) = await Run("dotnet", ["publish", Path.Combine(Root, "src", "Nurture.Worker", "Nurture.Worker.csproj"), "-c", Configuration, "--no-build", "-o", publish], Root, TimeSpan.FromMinutes(5));
        Assert.True(code == 0, output);
        Assert.True(Directory.GetFiles(Path.Combine(publish, "Templates"), "*.liquid").Length > 0, "the templates are not in the publish folder");

        var port = When_a_user_runs_the_commands.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = data, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(publish, "Nurture.Worker.dll"), "run", "--urls", url }) start.ArgumentList.Add(arg);
        start.Environment.Remove("Nurture__Database__Provider");
        start.Environment.Remove("ConnectionStrings__Nurture");
        start.Environment["Logging__Console__FormatterName"] = "json";
        using var process = Process.Start(start)!;
        var lines = new List<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        process.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            var ready = await Messaging.Eventually.Until(async () =>
            {
                try
                {
                    return await http.GetStringAsync("/health/ready");
                }
                catch (HttpRequestException)
                {
                    return "";
                }
            }, body => body.Contains("\"status\":\"Healthy\"", StringComparison.Ordinal), TimeSpan.FromMinutes(3), "the published worker to answer /health/ready");
            Assert.Contains("\"database\":{\"status\":\"Healthy\"", ready, StringComparison.Ordinal);

            var (healthCode, health) = await Run("dotnet", [Path.Combine(publish, "Nurture.Worker.dll"), "health", "--url", url], data, TimeSpan.FromSeconds(60));
            Assert.True(healthCode == 0, health);

            // The start-up banner is a log line like the others: with the JSON formatter, standard output is JSON only.
            await Messaging.Eventually.Until(() => Task.FromResult(Snapshot(lines)), l => l.Any(x => x.Contains("Nurture worker running", StringComparison.Ordinal)), TimeSpan.FromSeconds(20), "the start-up banner");
            foreach (var line in Snapshot(lines))
            {
                using var json = JsonDocument.Parse(line); // throws on a plain-text line
                Assert.True(json.RootElement.TryGetProperty("Message", out _), line);
            }
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        var (downCode, _) = await Run("dotnet", [Path.Combine(publish, "Nurture.Worker.dll"), "health", "--url", url], data, TimeSpan.FromSeconds(60));
        Assert.Equal(1, downCode);
    }

    private static List<string> Snapshot(List<string> lines)
    {
        lock (lines) return [.. lines];
    }

    private static async Task<(int Code, string Output)> Run(string file, string[] args, string folder, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cancel.Token);
        return (process.ExitCode, await output + await error);
    }
}

/// <summary>YAML to JSON as Compose reads it: plain scalars that are numbers or true/false are typed, quoted ones are text.</summary>
internal static class Yaml
{
    public static JsonNode ToJson(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return Convert(stream.Documents[0].RootNode)!;
    }

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode map => Merge(map),
        YamlSequenceNode list => new JsonArray([.. list.Children.Select(Convert)]),
        YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" } => null,
        YamlScalarNode { Style: ScalarStyle.Plain, Value: "true" or "false" } s => JsonValue.Create(s.Value == "true"),
        YamlScalarNode { Style: ScalarStyle.Plain } s when long.TryParse(s.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) => JsonValue.Create(n),
        YamlScalarNode { Style: ScalarStyle.Plain } s when double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => JsonValue.Create(d),
        YamlScalarNode s => JsonValue.Create(s.Value ?? ""),
        _ => throw new InvalidOperationException($"YAML node {node.NodeType} at {node.Start}"),
    };

    /// <summary>A mapping, with YAML merge keys (&lt;&lt;: *anchor) applied: the mapping's own keys win.</summary>
    private static JsonObject Merge(YamlMappingNode map)
    {
        var result = new JsonObject();
        foreach (var (key, value) in map.Children.Where(c => ((YamlScalarNode)c.Key).Value == "<<"))
        {
            foreach (var (k, v) in (JsonObject)Convert(value)!) result[k] = v?.DeepClone();
        }
        foreach (var (key, value) in map.Children.Where(c => ((YamlScalarNode)c.Key).Value != "<<"))
        {
            var name = ((YamlScalarNode)key).Value!;
            var converted = Convert(value);
            result[name] = converted; // a key written again replaces the merged value whole, as YAML's merge key says
        }
        return result;
    }
}
