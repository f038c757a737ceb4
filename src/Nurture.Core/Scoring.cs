using System.Collections.Frozen;
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
        // Scored twice for every event, so no LINQ and no regular expression here.
        var words = Words(role);
        var cut = language is null ? -1 : language.AsSpan().IndexOfAny('-', '_');
        var lang = cut >= 0 ? language![..cut] : language;
        var best = default(KeyValuePair<string, double>);
        foreach (var (key, entries) in roles)
        {
            if (!(string.IsNullOrWhiteSpace(lang) || key.Equals("en", StringComparison.OrdinalIgnoreCase) || key.Equals(lang, StringComparison.OrdinalIgnoreCase))) continue;
            foreach (var entry in entries)
            {
                if (!Matches(words, entry.Key)) continue;
                // As sorting by points (NaN lowest), then by word, would order them.
                var order = best.Key is null ? 1 : entry.Value.CompareTo(best.Value);
                if (order > 0 || order == 0 && string.CompareOrdinal(entry.Key, best.Key) < 0) best = entry;
            }
        }
        return best;
    }

    /// <summary>The words of each role key of a definition, split once: a definition has a few dozen.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> KeyWords = new(StringComparer.Ordinal);

    private static bool Matches(string[] words, string key)
    {
        var wanted = KeyWords.GetOrAdd(key, Words);
        if (wanted.Length == 0) return false;
        if (key.TrimStart().StartsWith('*'))
        {
            if (wanted.Length != 1) return false;
            foreach (var word in words)
            {
                if (word.EndsWith(wanted[0], StringComparison.Ordinal)) return true;
            }
            return false;
        }
        for (var i = 0; i + wanted.Length <= words.Length; i++)
        {
            if (words.AsSpan(i, wanted.Length).SequenceEqual(wanted)) return true;
        }
        return false;
    }

    /// <summary>
    /// Lower-case words: runs of letters and digits, so "Head-of-IT" is three words. A Latin letter typed as the letter and
    /// a combining accent is read as the one accented letter, so "ä" typed either way is the same: the worker runs with
    /// invariant globalization, which has no Unicode normalisation tables.
    /// </summary>
    internal static string[] Words(string text)
    {
        var lower = text.ToLowerInvariant();
        var words = new List<string>(4);
        Span<char> word = lower.Length <= 256 ? stackalloc char[lower.Length] : new char[lower.Length];
        var length = 0;
        for (var i = 0; i < lower.Length; i++)
        {
            var c = lower[i];
            if (i + 1 < lower.Length && char.GetUnicodeCategory(lower[i + 1]) == System.Globalization.UnicodeCategory.NonSpacingMark
                && Composed.TryGetValue(c | lower[i + 1] << 16, out var composed))
            {
                c = composed;
                i++;
            }
            // A mark left over (no composed letter for it) stays inside its word; on its own it is no word.
            if (char.IsLetter(c) || char.IsDigit(c) || length > 0 && char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.NonSpacingMark)
            {
                word[length++] = c;
            }
            else if (length > 0)
            {
                words.Add(new string(word[..length]));
                length = 0;
            }
        }
        if (length > 0) words.Add(new string(word[..length]));
        return [.. words];
    }

    /// <summary>Each lower-case letter of Latin-1 and Latin Extended-A written as a base letter and one combining mark: base, mark, letter.</summary>
    private const string Compositions =
        "a\u0300àa\u0301áa\u0302âa\u0303ãa\u0308äa\u030Aåc\u0327çe\u0300èe\u0301ée\u0302êe\u0308ëi\u0300ìi\u0301íi\u0302îi\u0308ïn\u0303ñ" +
        "o\u0300òo\u0301óo\u0302ôo\u0303õo\u0308öu\u0300ùu\u0301úu\u0302ûu\u0308üy\u0301ýy\u0308ÿa\u0304āa\u0306ăa\u0328ąc\u0301ćc\u0302ĉ" +
        "c\u0307ċc\u030Cčd\u030Cďe\u0304ēe\u0306ĕe\u0307ėe\u0328ęe\u030Cěg\u0302ĝg\u0306ğg\u0307ġg\u0327ģh\u0302ĥi\u0303ĩi\u0304īi\u0306ĭ" +
        "i\u0328įj\u0302ĵk\u0327ķl\u0301ĺl\u0327ļl\u030Cľn\u0301ńn\u0327ņn\u030Cňo\u0304ōo\u0306ŏo\u030Bőr\u0301ŕr\u0327ŗr\u030Cřs\u0301ś" +
        "s\u0302ŝs\u0327şs\u030Cšt\u0327ţt\u030Cťu\u0303ũu\u0304ūu\u0306ŭu\u030Aůu\u030Bűu\u0328ųw\u0302ŵy\u0302ŷz\u0301źz\u0307żz\u030Cž";

    private static readonly FrozenDictionary<int, char> Composed =
        Enumerable.Range(0, Compositions.Length / 3).ToFrozenDictionary(i => Compositions[3 * i] | Compositions[3 * i + 1] << 16, i => Compositions[3 * i + 2]);

    internal static ActivityRule? RuleFor(ScoringRules rules, ActivityType type) =>
        rules.Activities.TryGetValue(Core.Activities.NameOf(type), out var rule) ? rule : null;
}
