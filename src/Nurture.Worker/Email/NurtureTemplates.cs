using System.Text.Encodings.Web;
using Fluid;
using Nurture.Core;

namespace Nurture.Worker.Email;

/// <summary>Thrown at start-up for a template that is missing or does not parse; the message names the file.</summary>
public sealed class TemplateException(string message) : Exception(message);

/// <summary>One email rendered for one lead: subject, text part and HTML part.</summary>
public sealed record RenderedEmail(string Subject, string Text, string Html);

/// <summary>
/// The nurture emails in Liquid (Fluid): per template and language an HTML part ({template}.{lang}.html.liquid) and a
/// text part ({template}.{lang}.txt.liquid, whose first line is "Subject: …"). All are parsed at start-up, so a
/// missing or broken file stops the worker naming it instead of failing at the first send.
/// </summary>
public sealed class NurtureTemplates
{
    private static readonly FluidParser Parser = new();
    // Escapes what HTML needs (<, >, &, quotes) and leaves umlauts readable.
    private static readonly HtmlEncoder Html = HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All);
    private readonly Dictionary<(string Template, string Language), (IFluidTemplate Subject, IFluidTemplate Text, IFluidTemplate Html)> _templates = [];
    private readonly Dictionary<string, IFluidTemplate> _subjects = new(StringComparer.Ordinal);
    private readonly TemplateOptions _options = new();
    private readonly string _defaultLanguage;

    private NurtureTemplates(string defaultLanguage) => _defaultLanguage = defaultLanguage;

    /// <summary>Loads every template the definition's tracks name, in every configured language.</summary>
    public static NurtureTemplates Load(Definition definition, EmailSettings settings)
    {
        if (!Directory.Exists(settings.Templates))
        {
            throw new TemplateException($"{EmailSettings.Section}:Templates: the folder '{settings.Templates}' does not exist.");
        }
        var templates = new NurtureTemplates(settings.DefaultLanguage);
        var steps = definition.Nurture.Tracks.SelectMany(t => t.Steps).ToList();
        // An experiment's variants may name templates of their own, and subject lines that replace the template's.
        var variants = steps.SelectMany(s => s.Experiment?.Variants ?? []).ToList();
        var names = steps.Select(s => s.Template).Concat(variants.Select(v => v.Template).OfType<string>().Where(t => t.Length > 0)).Distinct(StringComparer.Ordinal);
        var subjects = steps.SelectMany(s => s.Subjects.Values.Append(s.Subject)).Concat(variants.SelectMany(v => v.Subjects.Values.Append(v.Subject)));
        foreach (var subject in subjects.OfType<string>().Where(s => !string.IsNullOrWhiteSpace(s)).Distinct(StringComparer.Ordinal))
        {
            templates._subjects[subject] = Parse($"{Definition.Section} (a step's or variant's subject line)", subject);
        }
        foreach (var name in names)
        {
            foreach (var language in settings.Languages)
            {
                var text = Read(settings.Templates, $"{name}.{language}.txt.liquid");
                var html = Read(settings.Templates, $"{name}.{language}.html.liquid");
                var (subjectLine, body) = SplitSubject(text.Path, text.Source);
                templates._templates[(name, language)] = (Parse(text.Path, subjectLine), Parse(text.Path, body), Parse(html.Path, html.Source));
            }
        }
        return templates;
    }

    public int Count => _templates.Count;

    /// <summary>Renders a step for a lead; the lead's language if there are templates for it, else the default language.</summary>
    /// <param name="subject">The step's or its variant's subject line (Liquid, loaded with the templates) instead of the template's.</param>
    public RenderedEmail Render(string template, Lead lead, string unsubscribeUrl, MimeKit.MailboxAddress sender, string track, int step, IReadOnlyList<EmailLink>? links = null, string? subject = null)
    {
        var language = LanguageFor(lead.Profile.Language);
        if (!_templates.TryGetValue((template, language), out var parts) && !_templates.TryGetValue((template, _defaultLanguage), out parts))
        {
            throw new TemplateException($"No template '{template}' is loaded; the definition and the templates folder disagree.");
        }
        var context = new TemplateContext(_options);
        var p = lead.Profile;
        // Missing fields are empty strings, so `| default: "…"` in the template supplies the fallback.
        context.SetValue("lead", new Dictionary<string, object>
        {
            ["firstName"] = p.FirstName ?? "", ["lastName"] = p.LastName ?? "", ["company"] = p.Company ?? "",
            ["industry"] = p.Industry ?? "", ["country"] = p.Country ?? "", ["source"] = p.Source,
        });
        context.SetValue("sender", new Dictionary<string, object> { ["name"] = sender.Name ?? "", ["address"] = sender.Address });
        context.SetValue("unsubscribeUrl", unsubscribeUrl);
        context.SetValue("track", track);
        context.SetValue("step", step);
        // The step's calls to action: {% for link in links %}<a href="{{ link.url }}">{{ link.text }}</a>{% endfor %}
        context.SetValue("links", (links ?? []).Select(l => new Dictionary<string, object> { ["text"] = l.Text, ["url"] = l.Url }).ToList());
        var subjectTemplate = subject is null ? parts.Subject
            : _subjects.TryGetValue(subject, out var variantSubject) ? variantSubject
            : throw new TemplateException($"The subject line '{subject}' was not loaded; the definition and the templates disagree.");
        return new RenderedEmail(OneLine(subjectTemplate.Render(context, NullEncoder.Default)), parts.Text.Render(context, NullEncoder.Default).Trim() + "\n", parts.Html.Render(context, Html));
    }

    /// <summary>The language an email to a lead is written in: the lead's, if there are templates for it, else the default.</summary>
    public string LanguageFor(string? language)
    {
        var two = language is { Length: >= 2 } ? language[..2].ToLowerInvariant() : _defaultLanguage;
        return _templates.Keys.Any(k => k.Language == two) ? two : _defaultLanguage;
    }

    /// <summary>A subject is one line: lead data with CR or LF in it cannot add a header.</summary>
    private static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static (string Path, string Source) Read(string folder, string file)
    {
        var path = Path.Combine(folder, file);
        if (!File.Exists(path)) throw new TemplateException($"Template '{path}' is missing: every template a track names needs an HTML and a text part per language.");
        return (path, File.ReadAllText(path));
    }

    private static (string Subject, string Body) SplitSubject(string path, string source)
    {
        var newline = source.IndexOf('\n', StringComparison.Ordinal);
        var first = (newline < 0 ? source : source[..newline]).TrimEnd('\r');
        if (!first.StartsWith("Subject:", StringComparison.OrdinalIgnoreCase))
        {
            throw new TemplateException($"Template '{path}': the first line must be \"Subject: …\".");
        }
        return (first["Subject:".Length..].Trim(), newline < 0 ? "" : source[(newline + 1)..]);
    }

    private static IFluidTemplate Parse(string path, string source) =>
        Parser.TryParse(source, out var template, out var error) ? template : throw new TemplateException($"Template '{path}' does not parse: {error}");
}
