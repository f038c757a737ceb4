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
        if (profile.Role is { } role && f.Roles.Where(r => role.Contains(r.Key, StringComparison.OrdinalIgnoreCase)).OrderByDescending(r => r.Value).ThenBy(r => r.Key, StringComparer.Ordinal).FirstOrDefault() is { Key: not null } best)
            AddFit($"fit:role~{best.Key}", best.Value);
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

    internal static ActivityRule? RuleFor(ScoringRules rules, ActivityType type) =>
        rules.Activities.TryGetValue(Core.Activities.NameOf(type), out var rule) ? rule : null;
}
