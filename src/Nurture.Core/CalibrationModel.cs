namespace Nurture.Core;

/// <summary>What a definition gives points for, one kind per rule family of <see cref="ScoringRules"/>.</summary>
public enum FeatureKind { Activity, Industry, CompanySize, Country, Role, BusinessDomain, FreeMailDomain, Unsubscribed, HardBounce, CompetitorDomain }

/// <summary>
/// One rule of the definition as a number per lead: how many of an activity count (up to the cap, as a count), or 1/0 for
/// a fit attribute or a negative signal. The lead's score is the sum of <see cref="Points"/> × value, before decay.
/// </summary>
public sealed record ScoreFeature(FeatureKind Kind, string Key, double Points, double CountCap)
{
    /// <summary>The setting the points live in, as `definition` and the settings files name it.</summary>
    public string Setting => Kind switch
    {
        FeatureKind.Activity => $"Scoring:Activities:{Key}",
        FeatureKind.Industry => $"Scoring:Fit:Industries:{Key}",
        FeatureKind.CompanySize => $"Scoring:Fit:CompanySizes:{Key}",
        FeatureKind.Country => $"Scoring:Fit:Countries:{Key}",
        FeatureKind.Role => $"Scoring:Fit:Roles:*:{Key}",
        FeatureKind.BusinessDomain => "Scoring:Fit:BusinessDomainPoints",
        FeatureKind.FreeMailDomain => "Scoring:Fit:FreeMailDomainPoints",
        FeatureKind.Unsubscribed => "Scoring:Negative:Unsubscribed",
        FeatureKind.HardBounce => "Scoring:Negative:HardBounce",
        _ => "Scoring:Negative:CompetitorDomain",
    };
}

/// <summary>
/// The definition's scoring rules as features, so a model can weigh the same things the definition scores. For the
/// definition the features came from, Σ points × value is the lead's score without decay (a test holds it to that).
/// </summary>
public static class ScoreFeatures
{
    public static IReadOnlyList<ScoreFeature> Of(Definition definition)
    {
        var s = definition.Scoring;
        var features = new List<ScoreFeature>();
        foreach (var (name, rule) in s.Activities.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (!Activities.TryParse(name, out _)) continue;
            // The cap kept as a count: as many downloads count after calibration as before.
            features.Add(new(FeatureKind.Activity, name, rule.Points, rule.Points == 0 ? Math.Max(1, rule.Cap) : rule.Cap / Math.Abs(rule.Points)));
        }
        features.AddRange(s.Fit.Industries.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new ScoreFeature(FeatureKind.Industry, p.Key, p.Value, 1)));
        features.AddRange(s.Fit.CompanySizes.Select((b, i) => new ScoreFeature(FeatureKind.CompanySize, i.ToString(System.Globalization.CultureInfo.InvariantCulture), b.Points, 1)));
        features.AddRange(s.Fit.Countries.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => new ScoreFeature(FeatureKind.Country, p.Key, p.Value, 1)));
        // A role word in several languages ("student" in en and de) is one feature: the best match counts, whichever language.
        foreach (var word in s.Fit.Roles.OrderBy(l => l.Key, StringComparer.Ordinal).SelectMany(l => l.Value.Keys).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            features.Add(new(FeatureKind.Role, word, RolePoints(s.Fit, word), 1));
        }
        features.Add(new(FeatureKind.BusinessDomain, "", s.Fit.BusinessDomainPoints, 1));
        features.Add(new(FeatureKind.FreeMailDomain, "", s.Fit.FreeMailDomainPoints, 1));
        features.Add(new(FeatureKind.Unsubscribed, "", s.Negative.Unsubscribed, 1));
        features.Add(new(FeatureKind.HardBounce, "", s.Negative.HardBounce, 1));
        features.Add(new(FeatureKind.CompetitorDomain, "", s.Negative.CompetitorDomain, 1));
        return features;
    }

    private static double RolePoints(FitRules fit, string word) =>
        fit.Roles.OrderBy(l => l.Key, StringComparer.Ordinal).SelectMany(l => l.Value).First(w => w.Key.Equals(word, StringComparison.OrdinalIgnoreCase)).Value;

    /// <summary>The lead's value for each feature, matched as <see cref="Scoring.Score"/> matches (the first company-size band, the best role word).</summary>
    public static double[] Values(Lead lead, Definition definition, IReadOnlyList<ScoreFeature> features)
    {
        var s = definition.Scoring;
        var profile = lead.Profile;
        var domain = profile.EmailDomain;
        var competitor = domain is not null && s.Negative.CompetitorDomains.Contains(domain, StringComparer.OrdinalIgnoreCase);
        var freeMail = domain is not null && !competitor && s.Fit.FreeMailDomains.Contains(domain, StringComparer.OrdinalIgnoreCase);
        var band = profile.CompanySize is { } size ? s.Fit.CompanySizes.FindIndex(b => size >= b.Min && size <= b.Max) : -1;
        var role = profile.Role is { } r ? Scoring.BestRole(r, profile.Language, s.Fit.Roles).Key : null;
        var values = new double[features.Count];
        for (var i = 0; i < features.Count; i++)
        {
            var f = features[i];
            values[i] = f.Kind switch
            {
                FeatureKind.Activity => Activities.TryParse(f.Key, out var type) ? Math.Min(lead.Activities.GetValueOrDefault(type), f.CountCap) : 0,
                FeatureKind.Industry => One(string.Equals(profile.Industry, f.Key, StringComparison.OrdinalIgnoreCase)),
                FeatureKind.CompanySize => One(band.ToString(System.Globalization.CultureInfo.InvariantCulture) == f.Key),
                FeatureKind.Country => One(string.Equals(profile.Country, f.Key, StringComparison.OrdinalIgnoreCase)),
                FeatureKind.Role => One(role is not null && role.Equals(f.Key, StringComparison.OrdinalIgnoreCase)),
                FeatureKind.BusinessDomain => One(domain is not null && !competitor && !freeMail),
                FeatureKind.FreeMailDomain => One(freeMail),
                FeatureKind.Unsubscribed => One(lead.Unsubscribed),
                FeatureKind.HardBounce => One(lead.HardBounced),
                _ => One(competitor),
            };
        }
        return values;
    }

    private static double One(bool yes) => yes ? 1 : 0;

    /// <summary>A copy of <paramref name="definition"/> whose scoring rules give <paramref name="points"/> (one per feature); activity caps keep their count.</summary>
    public static Definition WithPoints(Definition definition, IReadOnlyList<ScoreFeature> features, IReadOnlyList<double> points)
    {
        var s = definition.Scoring;
        var activities = new Dictionary<string, ActivityRule>(s.Activities.ToDictionary(a => a.Key, a => new ActivityRule { Points = a.Value.Points, Cap = a.Value.Cap }), StringComparer.OrdinalIgnoreCase);
        var industries = new Dictionary<string, double>(s.Fit.Industries, StringComparer.OrdinalIgnoreCase);
        var sizes = s.Fit.CompanySizes.Select(b => new SizeBand { Min = b.Min, Max = b.Max, Points = b.Points }).ToList();
        var countries = new Dictionary<string, double>(s.Fit.Countries, StringComparer.OrdinalIgnoreCase);
        var roles = new Dictionary<string, Dictionary<string, double>>(
            s.Fit.Roles.ToDictionary(l => l.Key, l => new Dictionary<string, double>(l.Value, StringComparer.OrdinalIgnoreCase)), StringComparer.OrdinalIgnoreCase);
        var fit = new FitRules
        {
            Industries = industries, CompanySizes = sizes, Countries = countries, Roles = roles,
            BusinessDomainPoints = s.Fit.BusinessDomainPoints, FreeMailDomainPoints = s.Fit.FreeMailDomainPoints, FreeMailDomains = [.. s.Fit.FreeMailDomains],
        };
        var negative = new NegativeRules
        {
            Unsubscribed = s.Negative.Unsubscribed, HardBounce = s.Negative.HardBounce, CompetitorDomain = s.Negative.CompetitorDomain, CompetitorDomains = [.. s.Negative.CompetitorDomains],
        };
        for (var i = 0; i < features.Count; i++)
        {
            var f = features[i];
            var p = points[i];
            switch (f.Kind)
            {
                case FeatureKind.Activity:
                    activities[f.Key] = new ActivityRule { Points = p, Cap = Math.Round(Math.Abs(p) * f.CountCap, MidpointRounding.AwayFromZero) };
                    break;
                case FeatureKind.Industry: industries[f.Key] = p; break;
                case FeatureKind.CompanySize: sizes[int.Parse(f.Key, System.Globalization.CultureInfo.InvariantCulture)].Points = p; break;
                case FeatureKind.Country: countries[f.Key] = p; break;
                case FeatureKind.Role:
                    foreach (var words in roles.Values)
                    {
                        foreach (var key in words.Keys.Where(k => k.Equals(f.Key, StringComparison.OrdinalIgnoreCase)).ToList()) words[key] = p;
                    }
                    break;
                case FeatureKind.BusinessDomain: fit.BusinessDomainPoints = p; break;
                case FeatureKind.FreeMailDomain: fit.FreeMailDomainPoints = p; break;
                case FeatureKind.Unsubscribed: negative.Unsubscribed = p; break;
                case FeatureKind.HardBounce: negative.HardBounce = p; break;
                default: negative.CompetitorDomain = p; break;
            }
        }
        var q = definition.Qualification;
        return new Definition
        {
            Name = definition.Name,
            Version = definition.Version,
            Scoring = new ScoringRules
            {
                Activities = activities, HalfLifeDays = s.HalfLifeDays, DecayResetActivities = [.. s.DecayResetActivities], Fit = fit, Negative = negative,
            },
            Qualification = new QualificationRules
            {
                MqlThreshold = q.MqlThreshold, HighIntentActivities = [.. q.HighIntentActivities], MinimumFit = q.MinimumFit, MinimumEngagements = q.MinimumEngagements,
                EngagementActivities = [.. q.EngagementActivities], IntentWindowDays = new(q.IntentWindowDays, StringComparer.OrdinalIgnoreCase),
                DemoteBelow = q.DemoteBelow, HandOffSlaHours = q.HandOffSlaHours,
            },
            Nurture = definition.Nurture,
            Value = definition.Value,
        };
    }
}

/// <summary>
/// Logistic regression by Newton's method (iteratively reweighted least squares) with an L2 penalty that pulls each weight
/// toward a prior instead of toward zero: λ/2 Σ (w − prior)². Where data is thin a weight stays near its prior; the
/// intercept is not penalised. Deterministic: a fixed number of steps at most, no randomness.
/// </summary>
public static class Logistic
{
    /// <summary>The intercept followed by one weight per column of <paramref name="x"/>.</summary>
    /// <remarks>A weight marked in <paramref name="zero"/> stays at 0: the rule is left out.</remarks>
    public static double[] Fit(IReadOnlyList<double[]> x, IReadOnlyList<bool> y, IReadOnlyList<double> prior, double lambda, IReadOnlyList<bool>? zero = null, int maxSteps = 50)
    {
        var k = prior.Count + 1;
        var w = new double[k];
        bool Fixed(int a) => a > 0 && zero is not null && zero[a - 1];
        // From no effects at all: Newton started far out (where every lead is near 0 or 1) can run away; the halving below guards the rest.
        var rate = y.Count(v => v) / (double)y.Count;
        w[0] = Math.Log(Math.Clamp(rate, 1e-6, 1 - 1e-6) / (1 - Math.Clamp(rate, 1e-6, 1 - 1e-6)));
        for (var step = 0; step < maxSteps; step++)
        {
            var gradient = new double[k];
            var hessian = new double[k, k];
            var row = new double[k];
            for (var i = 0; i < x.Count; i++)
            {
                row[0] = 1;
                Array.Copy(x[i], 0, row, 1, k - 1);
                var p = Sigmoid(Dot(w, row));
                var r = p - (y[i] ? 1 : 0);
                var v = Math.Max(p * (1 - p), 1e-10);
                for (var a = 0; a < k; a++)
                {
                    if (row[a] == 0) continue;
                    gradient[a] += r * row[a];
                    for (var b = a; b < k; b++) hessian[a, b] += v * row[a] * row[b];
                }
            }
            for (var a = 1; a < k; a++)
            {
                gradient[a] += lambda * (w[a] - prior[a - 1]);
                hessian[a, a] += lambda;
            }
            for (var a = 0; a < k; a++)
            {
                for (var b = 0; b < a; b++) hessian[a, b] = hessian[b, a];
            }
            for (var a = 1; a < k; a++)
            {
                if (!Fixed(a)) continue;
                gradient[a] = 0;
                for (var b = 0; b < k; b++) hessian[a, b] = hessian[b, a] = 0;
                hessian[a, a] = 1;
            }
            hessian[0, 0] += 1e-9; // a column of ones with all outcomes alike: keeps the system solvable
            var delta = Solve(hessian, gradient);
            var before = Objective(x, y, prior, lambda, w);
            var factor = 1.0;
            double[] next;
            while (true)
            {
                next = w.Select((v, a) => v - factor * delta[a]).ToArray();
                if (Objective(x, y, prior, lambda, next) <= before + 1e-12 || factor < 1e-6) break;
                factor /= 2; // a full step that made things worse: a shorter one in the same direction
            }
            var largest = 0.0;
            for (var a = 0; a < k; a++) largest = Math.Max(largest, Math.Abs(next[a] - w[a]));
            w = next;
            if (largest < 1e-9) break;
        }
        return w;
    }

    /// <summary>The penalised negative log-likelihood that <see cref="Fit"/> minimises.</summary>
    private static double Objective(IReadOnlyList<double[]> x, IReadOnlyList<bool> y, IReadOnlyList<double> prior, double lambda, double[] w)
    {
        var total = 0.0;
        for (var i = 0; i < x.Count; i++)
        {
            var z = w[0];
            for (var j = 0; j < x[i].Length; j++) z += w[j + 1] * x[i][j];
            // log(1 + e^z) − y·z, computed without overflow
            total += (z > 0 ? z + Math.Log(1 + Math.Exp(-z)) : Math.Log(1 + Math.Exp(z))) - (y[i] ? z : 0);
        }
        for (var j = 1; j < w.Length; j++) total += lambda / 2 * (w[j] - prior[j - 1]) * (w[j] - prior[j - 1]);
        return total;
    }

    public static double Sigmoid(double z) => z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));

    public static double Dot(double[] w, double[] row)
    {
        var sum = 0.0;
        for (var i = 0; i < w.Length; i++) sum += w[i] * row[i];
        return sum;
    }

    /// <summary>Cholesky: the penalised Hessian is symmetric positive definite.</summary>
    private static double[] Solve(double[,] a, double[] b)
    {
        var n = b.Length;
        var l = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j <= i; j++)
            {
                var sum = a[i, j];
                for (var m = 0; m < j; m++) sum -= l[i, m] * l[j, m];
                l[i, j] = i == j ? Math.Sqrt(Math.Max(sum, 1e-12)) : sum / l[j, j];
            }
        }
        var z = new double[n];
        for (var i = 0; i < n; i++)
        {
            var sum = b[i];
            for (var m = 0; m < i; m++) sum -= l[i, m] * z[m];
            z[i] = sum / l[i, i];
        }
        var x = new double[n];
        for (var i = n - 1; i >= 0; i--)
        {
            var sum = z[i];
            for (var m = i + 1; m < n; m++) sum -= l[m, i] * x[m];
            x[i] = sum / l[i, i];
        }
        return x;
    }

    /// <summary>
    /// The area under the ROC curve: the chance that a random positive scores above a random negative (ties count half).
    /// Null without both kinds of outcome.
    /// </summary>
    public static double? Auc(IReadOnlyList<double> scores, IReadOnlyList<bool> outcomes)
    {
        var positives = outcomes.Count(o => o);
        var negatives = outcomes.Count - positives;
        if (positives == 0 || negatives == 0) return null;
        var order = Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ToArray();
        var rankSum = 0.0;
        for (var i = 0; i < order.Length;)
        {
            var j = i;
            while (j + 1 < order.Length && scores[order[j + 1]] == scores[order[i]]) j++;
            var rank = (i + j) / 2.0 + 1; // ties share their average rank
            for (var m = i; m <= j; m++)
            {
                if (outcomes[order[m]]) rankSum += rank;
            }
            i = j + 1;
        }
        return (rankSum - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }
}
