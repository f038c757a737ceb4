using System.CommandLine;

namespace Nurture.Worker.Cli;

/// <summary>
/// `health`: asks a running worker's /health/ready and exits 0 when it is ready, 1 when not. The container's HEALTHCHECK
/// runs it, so the runtime image needs no curl or wget.
/// </summary>
public static class HealthCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url")
        {
            Description = "The worker's base address; NURTURE_HEALTH_URL, else http://localhost:8080.",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("NURTURE_HEALTH_URL") is { Length: > 0 } u ? u : "http://localhost:8080",
        };
        var command = new Command("health", "Ask a running worker whether it is ready (GET /health/ready): exit 0 when it is, 1 when not. What the container's HEALTHCHECK runs.") { url };
        command.SetAction(async (parse, cancel) =>
        {
            var text = parse.GetValue(url)!;
            if (!Uri.TryCreate(text, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException($"--url: '{text}' is not an http(s) address, e.g. http://localhost:8080.");
            }
            var ready = new Uri(address, "/health/ready");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            try
            {
                using var response = await http.GetAsync(ready, cancel);
                var body = await response.Content.ReadAsStringAsync(cancel);
                Console.Out.WriteLine(body);
                return response.IsSuccessStatusCode ? 0 : 1;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                await Console.Error.WriteLineAsync($"{ready}: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
