using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Email;
using Nurture.Worker.Leads;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Email;

/// <summary>
/// The worker as `dotnet run` builds it (HTTP on a free loopback port, SQLite in a temporary folder), with its clock a
/// FakeTimeProvider so tests move time instead of sleeping. The jobs are off unless asked for; tests then drive the dispatch.
/// </summary>
public sealed class MailRig : IAsyncDisposable
{
    /// <summary>Monday 2 March 2026, 09:30 in Berlin: inside the default send window.</summary>
    public static readonly DateTimeOffset Monday = new(2026, 3, 2, 8, 30, 0, TimeSpan.Zero);

    private MailRig(WebApplication app, FakeTimeProvider clock, string folder)
    {
        App = app;
        Clock = clock;
        Folder = folder;
    }

    public const string ApiKey = "test-api-key-0123456789";

    public WebApplication App { get; }

    /// <summary>An HTTP client for the worker's own address, with the API key.</summary>
    public HttpClient Http()
    {
        var http = new HttpClient { BaseAddress = new Uri(App.Urls.First()) };
        http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        return http;
    }
    public FakeTimeProvider Clock { get; }
    public string Folder { get; }
    public LeadStore Store => App.Services.GetRequiredService<LeadStore>();
    public NurtureDispatch Dispatch => App.Services.GetRequiredService<NurtureDispatch>();
    public Database Database => App.Services.GetRequiredService<Database>();
    public Definition Definition => App.Services.GetRequiredService<Definition>();
    public string MailFolder => Path.Combine(Folder, "mail");

    public static async Task<MailRig> StartAsync(TestSmtpServer? smtp = null, bool jobs = false, string? folder = null, FakeTimeProvider? clock = null, int? smtpPort = null, IReadOnlyDictionary<string, string?>? more = null)
    {
        folder ??= Directory.CreateTempSubdirectory("nurture-mail-").FullName;
        clock ??= new FakeTimeProvider(Monday);
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Nurture"] = $"Data Source={Path.Combine(folder, "nurture.db")}",
            ["Nurture:Email:From"] = "Nurture Test <news@nurture.example>",
            ["Nurture:Email:PickupDirectory"] = Path.Combine(folder, "mail"),
            ["Nurture:Email:UnsubscribeKeyFile"] = Path.Combine(folder, "unsubscribe.key"),
            ["Nurture:Email:DispatchSeconds"] = "1",
            ["Nurture:Schedule:Enabled"] = jobs ? "true" : "false",
            ["Nurture:Api:Key"] = ApiKey,
            ["Nurture:Api:MaxBodyBytes"] = "262144",
            ["Nurture:Metrics:RefreshSeconds"] = "1",
        };
        if ((smtp?.Port ?? smtpPort) is { } port)
        {
            settings["Nurture:Email:Smtp:Host"] = "127.0.0.1";
            settings["Nurture:Email:Smtp:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["Nurture:Email:Smtp:UseStartTls"] = "false";
            // Required when sending over SMTP.
            settings["Nurture:Email:ReplyTo"] = "Vertrieb <sales@nurture.example>";
            settings["Nurture:Email:Footer:Company"] = "Nurture Test GmbH";
            settings["Nurture:Email:Footer:Address"] = "Musterstraße 1, 10115 Berlin, Deutschland";
            settings["Nurture:Email:Footer:ImpressumUrl"] = "https://nurture.example/impressum";
        }
        foreach (var (key, value) in more ?? new Dictionary<string, string?>()) settings[key] = value;
        var app = WorkerHost.Build(["--urls", "http://127.0.0.1:0"], c => c.AddInMemoryCollection(settings), s => s.AddSingleton<TimeProvider>(clock));
        app.Services.GetRequiredService<Database>().Migrate();
        await app.StartAsync();
        return new MailRig(app, clock, folder);
    }

    public async ValueTask DisposeAsync() => await App.DisposeAsync();

    public LeadEventHandler Handler => App.Services.GetRequiredService<LeadEventHandler>();

    public Task<IReadOnlyList<AppliedEvent>> Apply(params NurtureMessage[] events) => Handler.HandleNowAsync(events, "test", CancellationToken.None);

    public static LeadCaptured Captured(string leadId, DateTimeOffset at, string email, string? firstName = "Anna", string timeZone = "Europe/Berlin", string language = "de", string? company = "Softwarehaus GmbH") => new()
    {
        EventId = Guid.NewGuid(), LeadId = leadId, OccurredAt = at, Email = email, FirstName = firstName, LastName = "Schmidt", Company = company,
        Industry = "software", CompanySize = 50, Country = "DE", TimeZone = timeZone, Language = language, Source = "webinar", Consent = true,
    };

    /// <summary>Moves the clock forward in steps, dispatching after each, as the job would.</summary>
    public async Task RunFor(TimeSpan span, TimeSpan step)
    {
        for (var t = TimeSpan.Zero; t < span; t += step)
        {
            Clock.Advance(step);
            await Dispatch.DispatchAllDueAsync();
        }
    }
}
