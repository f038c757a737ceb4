using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Email;
using Nurture.Worker.Scheduling;
using Nurture.Worker.Tests.Storage;

namespace Nurture.Worker.Tests.Email;

public class When_templates_are_loaded
{
    private static readonly string BuiltIn = Path.Combine(AppContext.BaseDirectory, "Templates");
    private static readonly MailboxAddress Sender = new("Gartenbau Grün", "info@gartenbau.example");

    private static string CopyOfBuiltIn()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-templates-").FullName;
        foreach (var file in Directory.GetFiles(BuiltIn)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    [Fact]
    public void Should_load_an_html_and_a_text_part_in_german_and_english_for_every_step_of_every_track()
    {
        var definition = DefaultDefinition.Create();
        var templates = NurtureTemplates.Load(definition, new EmailSettings());

        var steps = definition.Nurture.Tracks.SelectMany(t => t.Steps).Select(s => s.Template).Distinct().Count();
        Assert.Equal(steps * 2, templates.Count);
    }

    [Fact]
    public void Should_name_the_file_that_is_missing()
    {
        var folder = CopyOfBuiltIn();
        File.Delete(Path.Combine(folder, "solar-calculator.en.html.liquid"));

        var error = Assert.Throws<TemplateException>(() => NurtureTemplates.Load(DefaultDefinition.Create(), new EmailSettings { Templates = folder }));
        Assert.Contains("solar-calculator.en.html.liquid", error.Message, StringComparison.Ordinal);
        Assert.Contains("missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_name_the_file_that_does_not_parse()
    {
        var folder = CopyOfBuiltIn();
        File.WriteAllText(Path.Combine(folder, "garden-ideas.de.html.liquid"), "<p>{% if lead.firstName %}Hallo</p>");

        var error = Assert.Throws<TemplateException>(() => NurtureTemplates.Load(DefaultDefinition.Create(), new EmailSettings { Templates = folder }));
        Assert.Contains("garden-ideas.de.html.liquid", error.Message, StringComparison.Ordinal);
        Assert.Contains("does not parse", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_fall_back_to_defaults_for_missing_fields_and_to_the_default_language()
    {
        var templates = NurtureTemplates.Load(DefaultDefinition.Create(), new EmailSettings());
        var nameless = Lead.New("t-1", DateTimeOffset.UnixEpoch) with { Profile = new LeadProfile { Email = "x@example.com", Language = "de", Industry = "garden" } };
        var french = nameless with { Profile = nameless.Profile with { Language = "fr", FirstName = "Élodie" } };

        var german = templates.Render("garden-welcome", nameless, "https://n.example/unsubscribe/t", Sender, "garden", 0);
        var english = templates.Render("garden-welcome", french, "https://n.example/unsubscribe/t", Sender, "garden", 0);

        Assert.StartsWith("Guten Tag,", german.Text, StringComparison.Ordinal);
        Assert.Contains("https://n.example/unsubscribe/t", german.Html, StringComparison.Ordinal);
        Assert.Contains("Gartenbau Grün", german.Text, StringComparison.Ordinal);
        Assert.StartsWith("Hi Élodie,", english.Text, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', english.Subject);
    }

    [Theory]
    [InlineData("Nurture:Email:From", "not an address", "Nurture:Email:From: 'not an address' is not an address")]
    [InlineData("Nurture:Email:Smtp:Port", "0", "Nurture:Email:Smtp:Port: '0' must be a whole number from 1 to 65535.")]
    [InlineData("Nurture:Email:Smtp:Connections", "100", "Nurture:Email:Smtp:Connections: '100' must be a whole number from 1 to 32.")]
    [InlineData("Nurture:Email:Smtp:UseStartTls", "sometimes", "Nurture:Email:Smtp:UseStartTls: 'sometimes' must be true or false.")]
    [InlineData("Nurture:Email:DefaultLanguage", "fr", "Nurture:Email:DefaultLanguage: 'fr' is not one of Nurture:Email:Languages (de, en).")]
    [InlineData("Nurture:Email:PublicUrl", "ftp://x", "Nurture:Email:PublicUrl: 'ftp://x' is not an http(s) URL.")]
    [InlineData("Nurture:Email:UnsubscribeKey", "short", "Nurture:Email:UnsubscribeKey: 5 characters is too short")]
    [InlineData("Nurture:Schedule:DecayCheckMinutes", "0", "Nurture:Schedule:DecayCheckMinutes: '0' must be a whole number from 1 to 10080.")]
    public void Should_name_the_email_setting_that_cannot_work(string key, string value, string message)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([KeyValuePair.Create<string, string?>(key, value)]).Build();

        var error = Assert.Throws<SettingsException>(() => { EmailSettings.Load(configuration); ScheduleSettings.Load(configuration); });

        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_read_the_example_file_as_the_defaults()
    {
        var example = new ConfigurationBuilder().AddJsonFile(Path.Combine(Repository.Root, "appsettings.example.json")).Build();

        Assert.Equal(new ScheduleSettings(), ScheduleSettings.Load(example));
        Assert.Equal(new Nurture.Worker.Metrics.MetricsSettings(), Nurture.Worker.Metrics.MetricsSettings.Load(example));
        var api = Nurture.Worker.Api.ApiSettings.Load(example, Directory.CreateTempSubdirectory("nurture-api-key-").FullName);
        Assert.Equal((4 * 1024 * 1024, 10_000), (api.MaxBodyBytes, api.MaxEvents));
        Assert.True(api.KeyGenerated && api.Key.Length >= 32);
        var email = EmailSettings.Load(example);
        var defaults = new EmailSettings();
        Assert.Equal(defaults with { From = email.From, Languages = email.Languages }, email);
        Assert.Equal(defaults.From.ToString(), email.From.ToString());
        Assert.Equal(defaults.Languages, email.Languages);
    }

    [Fact]
    public void Should_accept_only_its_own_unsubscribe_tokens()
    {
        var tokens = new UnsubscribeTokens(System.Text.Encoding.UTF8.GetBytes("a key of at least thirty-two characters"));
        var other = new UnsubscribeTokens(System.Text.Encoding.UTF8.GetBytes("another key of thirty-two characters!!"));

        var token = tokens.Create("lead-ü/1");

        Assert.Equal("lead-ü/1", tokens.Verify(token));
        Assert.Null(other.Verify(token));
        Assert.Null(tokens.Verify(token.Replace(token.Split('.')[0], tokens.Create("lead-2").Split('.')[0], StringComparison.Ordinal)));
        Assert.Null(tokens.Verify("not-a-token"));
    }
}

/// <summary>The recurring jobs other than dispatch, run directly with a moved clock.</summary>
public class When_the_recurring_jobs_run
{
    [Fact]
    public async Task Should_raise_a_hand_off_breach_once_for_an_mql_sales_left_waiting()
    {
        await using var rig = await MailRig.StartAsync();
        var at = rig.Clock.GetUtcNow();
        await rig.Apply(
            MailRig.Captured("sla-1", at, "sla@softwarehaus.example"),
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = "sla-1", OccurredAt = at.AddMinutes(1), Activity = ActivityType.TrialStarted },
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = "sla-1", OccurredAt = at.AddMinutes(2), Activity = ActivityType.DemoRequested });
        var sla = new CheckHandOffSla(rig.Store, rig.Definition, rig.Clock, rig.App.Services.GetRequiredService<Nurture.Worker.Metrics.NurtureMetrics>(), rig.App.Services.GetRequiredService<Nurture.Worker.Storage.OutboxSignal>());

        Assert.Equal(0, await sla.CheckAsync(default));
        rig.Clock.Advance(TimeSpan.FromHours(rig.Definition.Qualification.HandOffSlaHours + 1));
        Assert.Equal(1, await sla.CheckAsync(default));
        Assert.Equal(0, await sla.CheckAsync(default));

        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'HandOffSlaBreached'"));
    }

    [Fact]
    public async Task Should_demote_an_mql_whose_interest_cooled_and_publish_the_mql_value()
    {
        await using var rig = await MailRig.StartAsync();
        var at = rig.Clock.GetUtcNow();
        await rig.Apply(
            // A weak fit (5 points), so once the behaviour points have decayed the score falls below DemoteBelow.
            MailRig.Captured("cool-1", at, "cool@gmail.com") with { Industry = "retail", CompanySize = 5, Country = "US" },
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = "cool-1", OccurredAt = at.AddMinutes(1), Activity = ActivityType.TrialStarted },
            new LeadActivityRecorded { EventId = Guid.NewGuid(), LeadId = "cool-1", OccurredAt = at.AddMinutes(2), Activity = ActivityType.DemoRequested });
        Assert.Equal(LeadStage.Mql, (await rig.Store.LoadLeadAsync("cool-1"))!.Lead.Stage);

        Assert.Equal(0, await rig.Handler.RescoreMqlsAsync(rig.Clock.GetUtcNow(), CancellationToken.None));
        rig.Clock.Advance(TimeSpan.FromDays(365));
        Assert.Equal(1, await rig.Handler.RescoreMqlsAsync(rig.Clock.GetUtcNow(), CancellationToken.None));
        Assert.Equal(0, await rig.Handler.RescoreMqlsAsync(rig.Clock.GetUtcNow(), CancellationToken.None));

        Assert.Equal(LeadStage.Lead, (await rig.Store.LoadLeadAsync("cool-1"))!.Lead.Stage);
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM stage_transitions WHERE lead_id = 'cool-1' AND to_stage = 'Lead'"));

        var snapshot = await new SnapshotMqlValue(rig.Store, rig.Definition, rig.Clock, rig.App.Services.GetRequiredService<Nurture.Worker.Storage.OutboxSignal>()).SnapshotAsync(default);
        var overall = Assert.Single(snapshot, m => m.Source is null);
        Assert.Equal(1, overall.MqlsInCohort);
        Assert.Contains(snapshot, m => m.Source == "webinar");
        Assert.Equal(snapshot.Count, await rig.Database.CountAsync("SELECT COUNT(*) FROM outbox WHERE type = 'MqlValueCalculated'"));
        Assert.Equal(snapshot.Count, await rig.Database.CountAsync("SELECT COUNT(*) FROM mql_value_snapshots")); // for dashboards that read SQL
        Assert.Equal(1, await rig.Database.CountAsync("SELECT COUNT(*) FROM mql_value_snapshots WHERE source = '' AND mqls = 1"));
    }
}
