using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>A score that explains itself: every rule that gave points, and how many.</summary>
public sealed record ScoreCard(double Behaviour, double Fit, double Negative, IReadOnlyList<ScoreLine> Lines)
{
    public double Total => Math.Round(Behaviour + Fit + Negative, 2);
}

/// <summary>Lead scoring: behaviour (capped per activity type, decaying with inactivity), fit and negative signals.</summary>
public static class Scoring
{
    public static ScoreCard Score(Lead lead, DateTimeOffset now, Definition definition)
    {
        var rules = definition.Scoring;
        var lines = new List<ScoreLine>();

        var rawBehaviour = 0.0;
        foreach (var (type, count) in lead.Activities)
        {
            var rule = RuleFor(rules, type);
            if (rule is null || rule.Points == 0) continue;
            var points = Math.Sign(rule.Points) * Math.Min(Math.Abs(rule.Points * count), rule.Cap);
            rawBehaviour += points;
            lines.Add(new($"activity:{Core.Activities.NameOf(type)} x{count}" + (Math.Abs(rule.Points * count) > rule.Cap ? $" (capped at {rule.Cap})" : ""), points));
        }

        var behaviour = rawBehaviour * DecayFactor(lead.LastActivityAt, now, rules.HalfLifeDays);
        if (Math.Abs(behaviour - rawBehaviour) >= 0.005)
        {
            var idleDays = (now - lead.LastActivityAt!.Value).TotalDays;
            lines.Add(new($"decay: {idleDays:0.#} days inactive, half-life {rules.HalfLifeDays} days", Math.Round(behaviour - rawBehaviour, 2)));
        }

        var fit = 0.0;
        void AddFit(string rule, double points)
        {
            if (points == 0) return;
            fit += points;
            lines.Add(new(rule, points));
        }

        var profile = lead.Profile;
        var f = rules.Fit;
        if (profile.Industry is { } industry && f.Industries.TryGetValue(industry, out var ip)) AddFit($"fit:industry={industry}", ip);
        if (profile.CompanySize is { } size && f.CompanySizes.FirstOrDefault(b => size >= b.Min && size <= b.Max) is { } band) AddFit($"fit:companySize={size}", band.Points);
        if (profile.Country is { } country && f.Countries.TryGetValue(country, out var cp)) AddFit($"fit:country={country.ToUpperInvariant()}", cp);
        if (profile.Role is { } role && BestRole(role, profile.Language, f.Roles) is { Key: not null } best) AddFit($"fit:role~{best.Key}", best.Value);
        var domain = profile.EmailDomain;
        var competitor = domain is not null && rules.Negative.CompetitorDomains.Contains(domain, StringComparer.OrdinalIgnoreCase);
        if (domain is not null && !competitor)
        {
            if (f.FreeMailDomains.Contains(domain, StringComparer.OrdinalIgnoreCase)) AddFit("fit:free-mail domain", f.FreeMailDomainPoints);
            else AddFit("fit:business domain", f.BusinessDomainPoints);
        }

        var negative = 0.0;
        void AddNegative(string rule, double points)
        {
            if (points == 0) return;
            negative += points;
            lines.Add(new(rule, points));
        }

        var n = rules.Negative;
        if (lead.Unsubscribed) AddNegative("negative:unsubscribed", n.Unsubscribed);
        if (lead.HardBounced) AddNegative("negative:hard bounce", n.HardBounce);
        if (competitor) AddNegative($"negative:competitor domain {domain}", n.CompetitorDomain);

        return new ScoreCard(Math.Round(behaviour, 2), Math.Round(fit, 2), Math.Round(negative, 2), lines);
    }

    /// <summary>0.5^(idle days / half-life): 1 right after an activity, halving every half-life; no decay when the half-life is 0.</summary>
    public static double DecayFactor(DateTimeOffset? lastActivityAt, DateTimeOffset now, double halfLifeDays)
    {
        if (halfLifeDays <= 0 || lastActivityAt is null) return 1;
        var idleDays = Math.Max(0, (now - lastActivityAt.Value).TotalDays);
        return Math.Pow(0.5, idleDays / halfLifeDays);
    }

    /// <summary>
    /// The best role word found in <paramref name="role"/> as a whole word (or phrase; "*word" as a word ending), among the
    /// words of the lead's language and English, or of every language when the lead has none. "Headhunter" is not "head".
    /// </summary>
    public static KeyValuePair<string, double> BestRole(string role, string? language, Dictionary<string, Dictionary<string, double>> roles)
    {
        var words = Words(role);
        var lang = language?.Split('-', '_')[0];
        return roles.Where(l => string.IsNullOrWhiteSpace(lang) || l.Key.Equals("en", StringComparison.OrdinalIgnoreCase) || l.Key.Equals(lang, StringComparison.OrdinalIgnoreCase))
            .SelectMany(l => l.Value)
            .Where(w => Matches(words, w.Key))
            .OrderByDescending(w => w.Value).ThenBy(w => w.Key, StringComparer.Ordinal)
            .FirstOrDefault();
    }

    private static bool Matches(string[] words, string key)
    {
        var wanted = Words(key);
        if (wanted.Length == 0) return false;
        if (key.TrimStart().StartsWith('*')) return wanted.Length == 1 && words.Any(w => w.EndsWith(wanted[0], StringComparison.Ordinal));
        for (var i = 0; i + wanted.Length <= words.Length; i++)
        {
            if (words.AsSpan(i, wanted.Length).SequenceEqual(wanted)) return true;
        }
        return false;
    }

    /// <summary>Lower-case words: runs of letters and digits, Unicode-normalised so "ä" typed either way is the same.</summary>
    internal static string[] Words(string text) =>
        System.Text.RegularExpressions.Regex.Split(text.Normalize(System.Text.NormalizationForm.FormC).ToLowerInvariant(), @"[^\p{L}\p{Nd}]+")
            .Where(w => w.Length > 0).ToArray();

    internal static ActivityRule? RuleFor(ScoringRules rules, ActivityType type) =>
        rules.Activities.TryGetValue(Core.Activities.NameOf(type), out var rule) ? rule : null;
}
