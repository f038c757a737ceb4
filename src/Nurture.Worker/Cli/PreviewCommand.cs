using System.CommandLine;
using System.Security.Cryptography;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Email;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Cli;

/// <summary>
/// `preview`: renders one step's email exactly as the dispatch would build it (links, sender identity, footer) for a
/// lead from the database or a made-up one, and writes its text and HTML parts to files, once per configured language.
/// </summary>
public static class PreviewCommand
{
    public static Command Create()
    {
        var track = new Option<string?>("--track") { Description = "The track (as the definition names it); default: the lead's track, or the default track for a made-up lead." };
        var step = new Option<int>("--step") { Description = "The step of the track, counting from 0.", DefaultValueFactory = _ => 0 };
        var lead = new Option<string?>("--lead") { Description = "A lead id in the configured database; without it a made-up lead is used." };
        var output = new Option<DirectoryInfo>("--out") { Description = "The folder the files are written to.", DefaultValueFactory = _ => new DirectoryInfo("preview") };
        var command = new Command("preview", "Render one nurture step's email for a lead (or a made-up lead) to .txt and .html files, in every configured language.") { track, step, lead, output };
        command.SetAction(async (parse, cancel) =>
        {
            var configuration = Settings.Load();
            var definition = DefinitionSettings.Load(configuration);
            var email = EmailSettings.Load(configuration);
            var templates = NurtureTemplates.Load(definition, email);
            var database = Settings.Database(configuration);

            Lead subject;
            if (parse.GetValue(lead) is { } leadId)
            {
                database.Migrate();
                subject = (await new LeadStore(database).LoadLeadAsync(leadId, cancel))?.Lead
                    ?? throw new ArgumentException($"--lead: there is no lead '{leadId}' in {database.Describe()}.");
                if (subject.Profile.Email is null) throw new ArgumentException($"--lead: lead '{leadId}' has no email address (erased, or never captured).");
            }
            else
            {
                subject = MadeUpLead(definition, parse.GetValue(track));
            }

            var trackName = parse.GetValue(track) ?? NurturePlan.TrackFor(subject.Profile, definition).Name;
            var chosen = definition.Nurture.Tracks.FirstOrDefault(t => string.Equals(t.Name, trackName, StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentException($"--track: the definition has no track '{trackName}' (tracks: {string.Join(", ", definition.Nurture.Tracks.Select(t => t.Name))}).");
            var index = parse.GetValue(step);
            if (index < 0 || index >= chosen.Steps.Count) throw new ArgumentException($"--step: track '{chosen.Name}' has steps 0 to {chosen.Steps.Count - 1}.");

            // Links are signed with the worker's key where there is one (so they work against it); a throwaway key otherwise.
            var throwaway = database.DataFolder is null && email.UnsubscribeKey is null;
            var composer = new MailComposer(definition, templates,
                throwaway ? new UnsubscribeTokens(RandomNumberGenerator.GetBytes(32)) : UnsubscribeTokens.From(email, database.DataFolder),
                throwaway ? new ClickTokens(RandomNumberGenerator.GetBytes(32)) : ClickTokens.From(email, database.DataFolder),
                email, SenderIdentity.Load(configuration, email, definition), ClickSettings.Load(configuration), new PublicAddress(email.PublicUrl, null));

            var folder = parse.GetValue(output)!;
            folder.Create();
            var template = chosen.Steps[index].Template;
            foreach (var language in email.Languages)
            {
                var lead = subject with { Profile = subject.Profile with { Language = language } };
                var message = composer.Compose(lead, chosen.Name, index, template, Lifecycle.DerivedId(Guid.Empty, $"preview:{lead.Id}/{chosen.Name}/{index}"), DateTimeOffset.UtcNow);
                var name = Path.Combine(folder.FullName, $"{chosen.Name}-{index}-{template}.{language}");
                await File.WriteAllTextAsync(name + ".txt", $"From: {message.From}\nReply-To: {message.ReplyTo}\nTo: {message.To}\nSubject: {message.Subject}\n\n{message.TextBody}", cancel);
                await File.WriteAllTextAsync(name + ".html", message.HtmlBody, cancel);
                Console.Out.WriteLine($"{language}: \"{message.Subject}\" → {name}.txt, {name}.html");
            }
            return 0;
        });
        return command;
    }

    /// <summary>Anna Beispiel, of a company in the track's first industry, who has just signed up.</summary>
    private static Lead MadeUpLead(Definition definition, string? track)
    {
        var industry = definition.Nurture.Tracks.FirstOrDefault(t => string.Equals(t.Name, track, StringComparison.OrdinalIgnoreCase))?.Industries.FirstOrDefault();
        var captured = new LeadCaptured
        {
            EventId = Guid.Empty, LeadId = "preview", OccurredAt = DateTimeOffset.UtcNow, Email = "anna.beispiel@example.com", FirstName = "Anna", LastName = "Beispiel",
            Company = "Beispiel GmbH", Industry = industry, CompanySize = 40, Country = "DE", Language = "de", TimeZone = "Europe/Berlin", Source = "preview", Consent = true,
        };
        return Lifecycle.Decide(null, captured, definition).Lead;
    }
}
