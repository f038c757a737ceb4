using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests;

/// <summary>`preview` run as the person writing templates runs it: the real executable, in a fresh folder.</summary>
public class When_a_template_writer_previews_a_step
{
    private static Task<(int Code, string Out, string Error)> Run(string folder, params string[] args) => When_a_user_runs_the_commands.Run(folder, args);

    [Fact]
    public async Task Should_write_the_text_and_html_part_in_german_and_english_with_links_and_footer()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-preview-").FullName;

        var result = await Run(folder, "preview", "--track", "software", "--step", "2",
            "--Nurture:Email:ReplyTo=vertrieb@softwarehaus.example", "--Nurture:Email:Footer:Company=Softwarehaus GmbH",
            "--Nurture:Email:Footer:Address=Musterstraße 1, 10115 Berlin", "--Nurture:Email:Footer:ImpressumUrl=https://softwarehaus.example/impressum");

        Assert.True(result.Code == 0, result.Error);
        var files = Directory.GetFiles(Path.Combine(folder, "preview")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["software-2-software-webinar.de.html", "software-2-software-webinar.de.txt", "software-2-software-webinar.en.html", "software-2-software-webinar.en.txt"], files);
        var germanText = await File.ReadAllTextAsync(Path.Combine(folder, "preview", "software-2-software-webinar.de.txt"));
        var englishHtml = await File.ReadAllTextAsync(Path.Combine(folder, "preview", "software-2-software-webinar.en.html"));
        Assert.Contains("Subject: Einladung", germanText, StringComparison.Ordinal);
        Assert.Contains("Reply-To: vertrieb@softwarehaus.example", germanText, StringComparison.Ordinal);
        Assert.Contains("Hallo Anna", germanText, StringComparison.Ordinal);
        Assert.Contains("→ Zum Webinar anmelden: http://localhost:5080/r/", germanText, StringComparison.Ordinal);
        Assert.Contains("Impressum: https://softwarehaus.example/impressum", germanText, StringComparison.Ordinal);
        Assert.Contains(">Register for the webinar</a>", englishHtml, StringComparison.Ordinal);
        Assert.Contains("Musterstraße 1", englishHtml, StringComparison.Ordinal);
        Assert.Contains("en: \"Invitation: live webinar with Q and A\"", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_render_for_a_stored_lead_on_its_own_track_and_name_one_that_is_not_stored()
    {
        var folder = Directory.CreateTempSubdirectory("nurture-preview-").FullName;
        Assert.Equal(0, (await Run(folder, "ingest", Path.Combine(Repository.Root, "samples", "events.ndjson"))).Code);

        var stored = await Run(folder, "preview", "--lead", "lead-00046", "--out", "out");
        var missing = await Run(folder, "preview", "--lead", "nobody");

        Assert.True(stored.Code == 0, stored.Error);
        Assert.Equal(4, Directory.GetFiles(Path.Combine(folder, "out")).Length);
        Assert.All(Directory.GetFiles(Path.Combine(folder, "out"), "*.txt"), f => Assert.Contains("lea.schneider45@gartenbau-5.example", File.ReadAllText(f), StringComparison.Ordinal));
        Assert.All(Directory.GetFiles(Path.Combine(folder, "out")), f => Assert.StartsWith("garden-0-garden-welcome.", Path.GetFileName(f), StringComparison.Ordinal));
        Assert.Equal(2, missing.Code);
        Assert.Contains("--lead: there is no lead 'nobody'", missing.Error, StringComparison.Ordinal);
    }
}
