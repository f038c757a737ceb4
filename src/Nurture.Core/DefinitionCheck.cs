using System.Collections.Frozen;
using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>Finds definitions that cannot work, so a bad one fails at start-up rather than in production.</summary>
internal static class DefinitionCheck
{
    private const string S = Definition.Section;

    public static IReadOnlyList<string> Problems(Definition d)
    {
        var problems = new List<string>();
        void Add(string setting, string why) => problems.Add($"{S}:{setting}: {why}");

        if (string.IsNullOrWhiteSpace(d.Name)) Add("Name", "is empty; name the definition so both teams can refer to it.");
        if (string.IsNullOrWhiteSpace(d.Version)) Add("Version", "is empty; every transition records the version that caused it.");

        foreach (var (key, rule) in d.Scoring.Activities)
        {
            if (!Activities.TryParse(key, out _)) Add($"Scoring:Activities:{key}", $"is not a known activity type (known: {string.Join(", ", Activities.Names)}).");
            if (rule.Cap < 0) Add($"Scoring:Activities:{key}:Cap", "is negative; a cap limits the size of the points, give it as a positive number.");
            if (rule.Cap < Math.Abs(rule.Points)) Add($"Scoring:Activities:{key}:Cap", $"({rule.Cap}) is below the points of one activity ({rule.Points}).");
        }

        if (double.IsNaN(d.Scoring.HalfLifeDays) || d.Scoring.HalfLifeDays < 0) Add("Scoring:HalfLifeDays", $"({d.Scoring.HalfLifeDays}) must be zero (no decay) or positive.");
        if (d.Scoring.HalfLifeDays > 0 && d.Scoring.DecayResetActivities.Count == 0) Add("Scoring:DecayResetActivities", "is empty; name the activities that restart the decay clock, or set HalfLifeDays to 0.");
        foreach (var (i, name) in d.Scoring.DecayResetActivities.Index())
        {
            if (!Activities.TryParse(name, out _)) Add($"Scoring:DecayResetActivities:{i}", $"'{name}' is not a known activity type.");
        }
        foreach (var (language, words) in d.Scoring.Fit.Roles)
        {
            if (language.Length != 2 || !language.All(char.IsAsciiLetter)) Add($"Scoring:Fit:Roles:{language}", "is not a two-letter language code such as en or de.");
            foreach (var word in words.Keys.Where(w => Scoring.Words(w).Length == 0 || w.TrimStart('*').Any(c => !(char.IsLetterOrDigit(c) || c == ' '))))
            {
                Add($"Scoring:Fit:Roles:{language}:{word}", "must be letters and digits: a word, several words for a phrase, or '*' and a word for a word ending.");
            }
        }
        foreach (var (i, band) in d.Scoring.Fit.CompanySizes.Index())
        {
            if (band.Min < 0 || band.Max < band.Min) Add($"Scoring:Fit:CompanySizes:{i}", $"has Min {band.Min} and Max {band.Max}; Min must be 0 or more and not above Max.");
        }

        var q = d.Qualification;
        var maxScore = MaxBehaviour(d) + MaxFit(d.Scoring.Fit);
        if (q.MqlThreshold <= 0) Add("Qualification:MqlThreshold", $"({q.MqlThreshold}) must be positive, or every new lead would be an MQL.");
        else if (q.MqlThreshold > maxScore) Add("Qualification:MqlThreshold", $"({q.MqlThreshold}) is unreachable: the most a lead can score is {maxScore}.");
        if (q.MinimumFit > MaxFit(d.Scoring.Fit)) Add("Qualification:MinimumFit", $"({q.MinimumFit}) is unreachable: the best fit is {MaxFit(d.Scoring.Fit)}.");
        if (q.HighIntentActivities.Count == 0) Add("Qualification:HighIntentActivities", "is empty; name at least one activity that shows buying intent.");
        foreach (var (i, name) in q.HighIntentActivities.Index())
        {
            if (!Activities.TryParse(name, out var type)) Add($"Qualification:HighIntentActivities:{i}", $"'{name}' is not a known activity type.");
            else if (PointsOf(d, type) <= 0) Add($"Qualification:HighIntentActivities:{i}", $"'{name}' gives no positive points in Scoring:Activities, so it cannot show intent.");
        }
        if (q.EngagementActivities.Count == 0) Add("Qualification:EngagementActivities", "is empty; name the activities that count as engagement, or no lead could become an MQL.");
        foreach (var (i, name) in q.EngagementActivities.Index())
        {
            if (!Activities.TryParse(name, out _)) Add($"Qualification:EngagementActivities:{i}", $"'{name}' is not a known activity type.");
        }
        foreach (var (i, name) in q.HighIntentActivities.Index().Where(p => !q.EngagementActivities.Contains(p.Item, StringComparer.OrdinalIgnoreCase)))
        {
            Add($"Qualification:HighIntentActivities:{i}", $"'{name}' is not in EngagementActivities, so it could never make a lead an MQL.");
        }
        foreach (var (name, days) in q.IntentWindowDays)
        {
            if (!Activities.TryParse(name, out _)) Add($"Qualification:IntentWindowDays:{name}", "is not a known activity type.");
            if (!(days > 0)) Add($"Qualification:IntentWindowDays:{name}", $"({days}) must be a positive number of days.");
        }
        if (q.MinimumEngagements < 1) Add("Qualification:MinimumEngagements", $"({q.MinimumEngagements}) must be at least 1.");
        if (q.DemoteBelow < 0 || q.DemoteBelow >= q.MqlThreshold && q.MqlThreshold > 0) Add("Qualification:DemoteBelow", $"({q.DemoteBelow}) must be 0 (never demote) or between 0 and the MQL threshold ({q.MqlThreshold}).");
        if (q.HandOffSlaHours <= 0) Add("Qualification:HandOffSlaHours", $"({q.HandOffSlaHours}) must be positive.");

        var n = d.Nurture;
        if (n.Tracks.Count == 0) Add("Nurture:Tracks", "is empty; give at least a default track (one with no Industries).");
        else if (!n.Tracks.Any(t => t.Industries.Count == 0)) Add("Nurture:Tracks", "has no default track (one with no Industries) for leads outside every segment.");
        foreach (var (i, track) in n.Tracks.Index())
        {
            if (string.IsNullOrWhiteSpace(track.Name)) Add($"Nurture:Tracks:{i}:Name", "is empty.");
            else if (track.Name.Length > 64) Add($"Nurture:Tracks:{i}:Name", $"'{track.Name[..20]}…' is longer than 64 characters (every step and click stores it).");
            if (track.Steps.Count == 0) Add($"Nurture:Tracks:{i}:Steps", $"track '{track.Name}' has no steps.");
            foreach (var (j, step) in track.Steps.Index())
            {
                var at = $"Nurture:Tracks:{i}:Steps:{j}";
                if (string.IsNullOrWhiteSpace(step.Template)) Add($"{at}:Template", "is empty.");
                else if (step.Template.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))) Add($"{at}:Template", $"'{step.Template}' may hold only letters, digits, '-' and '_' (it names a file).");
                if (step.DelayDays < 0 || double.IsNaN(step.DelayDays)) Add($"{at}:DelayDays", $"({step.DelayDays}) must be zero or positive.");
                CheckSubjects(at, step.Subject, step.Subjects, Add);
                if (step.Condition?.Done is { } done && !Activities.TryParse(done, out _)) Add($"{at}:Condition:Done", $"'{done}' is not a known activity type.");
                if (step.Condition?.NotDone is { } notDone && !Activities.TryParse(notDone, out _)) Add($"{at}:Condition:NotDone", $"'{notDone}' is not a known activity type.");
                foreach (var (k, link) in step.Links.Index())
                {
                    if (string.IsNullOrWhiteSpace(link.Text)) Add($"{at}:Links:{k}:Text", "is empty; a call to action says what the reader gets.");
                    if (!Uri.TryCreate(link.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https")) Add($"{at}:Links:{k}:Url", $"'{link.Url}' is not an absolute http(s) URL.");
                    else if (link.Url.Length > 2000) Add($"{at}:Links:{k}:Url", "is longer than 2000 characters (it is kept with every click).");
                }
            }
        }
        foreach (var (i, track) in n.Tracks.Index())
        {
            foreach (var (j, step) in track.Steps.Index().Where(s => s.Item.Experiment is not null))
            {
                CheckExperiment($"Nurture:Tracks:{i}:Steps:{j}:Experiment", step.Experiment!, Add);
            }
        }
        if (Experiments.All(d).GroupBy(x => x.Experiment.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Key.Length > 0 && g.Count() > 1) is { } twice)
        {
            Add("Nurture:Tracks", $"name the experiment '{twice.Key}' on more than one step; each experiment's name picks its leads' variants, so give each its own.");
        }
        if (n.Tracks.GroupBy(t => t.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } dup) Add("Nurture:Tracks", $"name '{dup.Key}' more than once.");

        var w = n.SendWindow;
        if (w.Days.Count == 0) Add("Nurture:SendWindow:Days", "is empty; no email could ever be sent.");
        if (w.StartHour is < 0 or > 23) Add("Nurture:SendWindow:StartHour", $"({w.StartHour}) must be 0 to 23.");
        if (w.EndHour is < 1 or > 24 || w.EndHour <= w.StartHour) Add("Nurture:SendWindow:EndHour", $"({w.EndHour}) must be after StartHour ({w.StartHour}) and at most 24.");
        if (!TimeZoneInfo.TryFindSystemTimeZoneById(w.DefaultTimeZone, out _)) Add("Nurture:SendWindow:DefaultTimeZone", $"'{w.DefaultTimeZone}' is not a known time zone (use an IANA id such as Europe/Berlin).");
        if (n.FrequencyCap.MaxEmails < 1) Add("Nurture:FrequencyCap:MaxEmails", $"({n.FrequencyCap.MaxEmails}) must be at least 1.");
        if (n.FrequencyCap.PerDays <= 0) Add("Nurture:FrequencyCap:PerDays", $"({n.FrequencyCap.PerDays}) must be positive.");

        var v = d.Value;
        if (v.PriorCloseRate is < 0 or > 1) Add("Value:PriorCloseRate", $"({v.PriorCloseRate}) is a rate: give it between 0 and 1 (20 % is 0.2).");
        if (v.PriorWeight < 0) Add("Value:PriorWeight", $"({v.PriorWeight}) must be zero or positive.");
        if (v.PriorAverageRevenue < 0) Add("Value:PriorAverageRevenue", $"({v.PriorAverageRevenue}) must be zero or positive.");
        if (v.Currency.Length != 3) Add("Value:Currency", $"'{v.Currency}' is not an ISO 4217 code such as EUR.");
        if (v.SalesCycleDays < 0) Add("Value:SalesCycleDays", $"({v.SalesCycleDays}) must be zero or positive.");
        return problems;
    }

    private static void CheckSubjects(string at, string? subject, Dictionary<string, string> subjects, Action<string, string> add)
    {
        static bool Bad(string? s) => string.IsNullOrWhiteSpace(s) || s.Length > 200 || s.Contains('\n', StringComparison.Ordinal) || s.Contains('\r', StringComparison.Ordinal);
        if (subject is not null && Bad(subject)) add($"{at}:Subject", "must be one line of 1 to 200 characters.");
        foreach (var language in subjects.Where(p => Bad(p.Value)).Select(p => p.Key)) add($"{at}:Subjects:{language}", "must be one line of 1 to 200 characters.");
    }

    private static void CheckExperiment(string at, StepExperiment e, Action<string, string> add)
    {
        if (string.IsNullOrWhiteSpace(e.Name)) add($"{at}:Name", "is empty; the name labels the report and picks each lead's variant.");
        else if (e.Name.Length > 64 || e.Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))) add($"{at}:Name", $"'{e.Name}' may hold only letters, digits, '-' and '_', at most 64 (it is a metric label).");
        if (!(e.WindowDays > 0) || double.IsInfinity(e.WindowDays)) add($"{at}:WindowDays", $"({e.WindowDays}) must be a positive number of days: how long after the step an MQL or a deal counts for the variant.");
        if (!Enum.IsDefined(e.Judge)) add($"{at}:Judge", $"({e.Judge}) must be Mql, Customer or Revenue.");
        if (!(e.Alpha is > 0 and <= 0.5)) add($"{at}:Alpha", $"({e.Alpha}) must be above 0 and at most 0.5 (0.05: a 5 % chance of a false winner).");
        if (e.PlannedLeads < 10) add($"{at}:PlannedLeads", $"({e.PlannedLeads}) must be at least 10: the number of leads the interval is tuned for.");
        if (e.Variants.Count < 2) add($"{at}:Variants", $"has {e.Variants.Count} variant(s); an experiment needs the control (the first) and at least one other.");
        if (e.Variants.Count > 10) add($"{at}:Variants", $"has {e.Variants.Count} variants; at most 10 (each is a metric label and splits the leads thinner).");
        if (e.Variants.GroupBy(v => v.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } dup) add($"{at}:Variants", $"name '{dup.Key}' more than once.");
        foreach (var (k, v) in e.Variants.Index())
        {
            var vat = $"{at}:Variants:{k}";
            if (string.IsNullOrWhiteSpace(v.Name) || v.Name.Length > 32 || v.Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))) add($"{vat}:Name", $"'{v.Name}' must be 1 to 32 letters, digits, '-' or '_' (e.g. A, B).");
            if (!(v.Weight > 0) || double.IsInfinity(v.Weight)) add($"{vat}:Weight", $"({v.Weight}) must be a positive number: the variant's share relative to the others.");
            if (v.Template is { } template && (template.Length == 0 || template.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))) add($"{vat}:Template", $"'{template}' may hold only letters, digits, '-' and '_' (it names a file).");
            CheckSubjects(vat, v.Subject, v.Subjects, add);
            if (v.DelayDays is { } delay && (delay < 0 || double.IsNaN(delay) || double.IsInfinity(delay))) add($"{vat}:DelayDays", $"({delay}) must be zero or positive.");
            foreach (var (l, link) in (v.Links ?? []).Index())
            {
                if (string.IsNullOrWhiteSpace(link.Text)) add($"{vat}:Links:{l}:Text", "is empty; a call to action says what the reader gets.");
                if (!Uri.TryCreate(link.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https")) add($"{vat}:Links:{l}:Url", $"'{link.Url}' is not an absolute http(s) URL.");
                else if (link.Url.Length > 2000) add($"{vat}:Links:{l}:Url", "is longer than 2000 characters (it is kept with every click).");
            }
        }
    }

    private static double PointsOf(Definition d, ActivityType type) =>
        d.Scoring.Activities.FirstOrDefault(a => Activities.TryParse(a.Key, out var t) && t == type).Value?.Points ?? 0;

    private static double MaxBehaviour(Definition d) =>
        d.Scoring.Activities.Values.Where(r => r.Points > 0).Sum(r => r.Cap);

    internal static double MaxFit(FitRules f) =>
        MaxOrZero(f.Industries.Values) + MaxOrZero(f.CompanySizes.Select(b => b.Points)) + MaxOrZero(f.Countries.Values)
        + MaxOrZero(f.Roles.Values.SelectMany(words => words.Values)) + Math.Max(0, Math.Max(f.BusinessDomainPoints, f.FreeMailDomainPoints));

    private static double MaxOrZero(IEnumerable<double> values) => Math.Max(0, values.DefaultIfEmpty(0).Max());
}

/// <summary>Activity types by their JSON (camelCase) names, as the definition writes them.</summary>
public static class Activities
{
    /// <summary>Looked up, not built: scoring asks for a name for every activity of every lead it scores.</summary>
    private static readonly FrozenDictionary<ActivityType, string> Named = Enum.GetValues<ActivityType>().ToFrozenDictionary(type => type, Spell);

    public static IReadOnlyList<string> Names { get; } = Enum.GetValues<ActivityType>().Select(type => Named[type]).ToArray();

    public static string NameOf(ActivityType type) => Named.TryGetValue(type, out var name) ? name : Spell(type);

    private static string Spell(ActivityType type)
    {
        var name = type.ToString();
        return char.ToLowerInvariant(name[0]) + name[1..];
    }

    public static bool TryParse(string name, out ActivityType type) =>
        Enum.TryParse(name, ignoreCase: true, out type) && Enum.IsDefined(type) && !name.Any(char.IsDigit);
}
