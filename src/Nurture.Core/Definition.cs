using Nurture.Contracts;

namespace Nurture.Core;

/// <summary>
/// The one written definition marketing and sales agree on: how leads are scored, when a lead is an MQL,
/// how it is nurtured and what an MQL is worth. Bound from the configuration section <c>Nurture:Definition</c>;
/// every transition records <see cref="Version"/>.
/// </summary>
public sealed class Definition
{
    public const string Section = "Nurture:Definition";

    public string Name { get; set; } = "Shared MQL definition";
    public string Version { get; set; } = "2026-11.3";
    public ScoringRules Scoring { get; set; } = new();
    public QualificationRules Qualification { get; set; } = new();
    public NurtureRules Nurture { get; set; } = new();
    public ValueRules Value { get; set; } = new();

    /// <summary>Every problem that would stop this definition from working, each naming its setting.</summary>
    public IReadOnlyList<string> Validate() => DefinitionCheck.Problems(this);

    /// <summary>Throws <see cref="DefinitionException"/> listing every problem, or returns this definition.</summary>
    public Definition EnsureValid()
    {
        var problems = Validate();
        return problems.Count == 0 ? this : throw new DefinitionException(problems);
    }
}

public sealed class DefinitionException(IReadOnlyList<string> problems)
    : Exception("The qualification definition cannot work:" + Environment.NewLine + "  - " + string.Join(Environment.NewLine + "  - ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

public sealed class ActivityRule
{
    public double Points { get; set; }
    /// <summary>The most points (by magnitude) this activity type can give however often it happens.</summary>
    public double Cap { get; set; }
}

public sealed class SizeBand
{
    public int Min { get; set; }
    public int Max { get; set; } = int.MaxValue;
    public double Points { get; set; }
}

public sealed class FitRules
{
    public Dictionary<string, double> Industries { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public List<SizeBand> CompanySizes { get; set; } = [];
    public Dictionary<string, double> Countries { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>
    /// Role words per language ("en", "de"), matched as whole words in the lead's role (several words match as a phrase;
    /// a word starting with '*' matches a word ending, for compounds: "*leiter" finds "Vertriebsleiter"). The words of the
    /// lead's language and the English ones count (titles are often English); for a lead without a language, all do. The best match counts.
    /// </summary>
    public Dictionary<string, Dictionary<string, double>> Roles { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public double BusinessDomainPoints { get; set; }
    public double FreeMailDomainPoints { get; set; }
    public List<string> FreeMailDomains { get; set; } = [];
}

public sealed class NegativeRules
{
    public double Unsubscribed { get; set; }
    public double HardBounce { get; set; }
    public double CompetitorDomain { get; set; }
    public List<string> CompetitorDomains { get; set; } = [];
}

public sealed class ScoringRules
{
    /// <summary>Keyed by activity type in camelCase, as in the JSON events (e.g. "webinarAttended").</summary>
    public Dictionary<string, ActivityRule> Activities { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Behaviour points halve after this many days without an activity that resets decay; 0 turns decay off.</summary>
    public double HalfLifeDays { get; set; } = 30;
    /// <summary>The activities that show the lead is still there and restart the decay clock; an email open (often a machine's) does not.</summary>
    public List<string> DecayResetActivities { get; set; } = [];
    public FitRules Fit { get; set; } = new();
    public NegativeRules Negative { get; set; } = new();
}

public sealed class QualificationRules
{
    public double MqlThreshold { get; set; } = 50;
    /// <summary>At least one of these must have happened: a download alone is interest, a demo request is intent.</summary>
    public List<string> HighIntentActivities { get; set; } = [];
    public double MinimumFit { get; set; }
    /// <summary>The guard against handing over too early: this many engagements first (again after a recycle).</summary>
    public int MinimumEngagements { get; set; } = 2;
    /// <summary>The activities that count as an engagement and may make a lead an MQL; any other (an open) adds its points but never qualifies a lead on its own.</summary>
    public List<string> EngagementActivities { get; set; } = [];
    /// <summary>Days a high-intent activity keeps showing intent after it last happened; an activity not listed never expires.</summary>
    public Dictionary<string, double> IntentWindowDays { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>An MQL sales has not accepted whose score decays below this goes back to Lead; 0 never demotes.</summary>
    public double DemoteBelow { get; set; }
    /// <summary>Hours sales has to accept an MQL before the hand-off SLA is breached.</summary>
    public double HandOffSlaHours { get; set; } = 48;
}

public sealed class StepCondition
{
    /// <summary>Send only if the lead has done this activity.</summary>
    public string? Done { get; set; }
    /// <summary>Send only if the lead has not done this activity (e.g. do not invite to a webinar they attended).</summary>
    public string? NotDone { get; set; }
    public double? MinimumScore { get; set; }
}

public sealed class TrackStep
{
    /// <summary>Days after the previous step (or after enrolment, for the first step).</summary>
    public double DelayDays { get; set; }
    /// <summary>Template key; files are templates/{key}.{language}.html and .txt.</summary>
    public string Template { get; set; } = "";
    public StepCondition? Condition { get; set; }
    /// <summary>The step's calls to action, placed by its templates; each goes out as a signed, tracked redirect.</summary>
    public List<StepLink> Links { get; set; } = [];
    /// <summary>A subject line (Liquid) instead of the template's first line, e.g. an experiment's winner kept.</summary>
    public string? Subject { get; set; }
    /// <summary>The subject line per language ("de", "en"), where it differs from <see cref="Subject"/>.</summary>
    public Dictionary<string, string> Subjects { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>An A/B test of this step: each lead gets one variant, by a stable hash of its id and the experiment's name.</summary>
    public StepExperiment? Experiment { get; set; }
}

/// <summary>What judges an experiment: what the business cares about, never clicks.</summary>
public enum ExperimentOutcome
{
    /// <summary>Became an MQL within the window after the step.</summary>
    Mql,
    /// <summary>Won a deal within the window after the step.</summary>
    Customer,
    /// <summary>Revenue from deals won within the window after the step, per lead.</summary>
    Revenue,
}

/// <summary>
/// An experiment on one nurture step. The first variant is the control (usually the step as it is, no overrides); each
/// other variant is compared with it. A lead's variant comes from SHA-256 of the experiment's name and the lead's id, so
/// every worker and every replay agree.
/// </summary>
public sealed class StepExperiment
{
    /// <summary>Names the experiment in reports, metrics and the hash; renaming it re-shuffles the leads.</summary>
    public string Name { get; set; } = "";
    /// <summary>Days after the step in which an MQL, a won deal and its revenue count for the lead's variant.</summary>
    public double WindowDays { get; set; } = 30;
    /// <summary>The outcome that names the winner; the others are shown.</summary>
    public ExperimentOutcome Judge { get; set; } = ExperimentOutcome.Customer;
    /// <summary>The chance of naming a winner when there is no difference, however often the report is read.</summary>
    public double Alpha { get; set; } = 0.05;
    /// <summary>Leads (all variants, window over) the confidence sequence is tightest at; it stays valid before and after.</summary>
    public int PlannedLeads { get; set; } = 2000;
    public List<StepVariant> Variants { get; set; } = [];
}

/// <summary>One arm of an experiment: what it changes about the step (nothing, for the control).</summary>
public sealed class StepVariant
{
    public string Name { get; set; } = "";
    /// <summary>The share of leads, relative to the other variants' weights.</summary>
    public double Weight { get; set; } = 1;
    /// <summary>Another template (files as for the step's).</summary>
    public string? Template { get; set; }
    /// <summary>Another subject line (Liquid, as the template's first line), instead of the template's.</summary>
    public string? Subject { get; set; }
    /// <summary>The subject line per language ("de", "en"), where it differs from <see cref="Subject"/>.</summary>
    public Dictionary<string, string> Subjects { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Another delay after the previous step.</summary>
    public double? DelayDays { get; set; }
    /// <summary>Other calls to action, instead of the step's.</summary>
    public List<StepLink>? Links { get; set; }
}

/// <summary>A call to action: what the link says and where it leads.</summary>
public sealed class StepLink
{
    /// <summary>The link text, used for languages not in <see cref="Texts"/>.</summary>
    public string Text { get; set; } = "";
    /// <summary>The link text per language ("de", "en"), where it differs from <see cref="Text"/>.</summary>
    public Dictionary<string, string> Texts { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public string Url { get; set; } = "";

    public string TextIn(string language) => Texts.TryGetValue(language, out var text) && !string.IsNullOrWhiteSpace(text) ? text : Text;
}

public sealed class NurtureTrack
{
    public string Name { get; set; } = "";
    /// <summary>Industries this track is for; a track with none is the default track.</summary>
    public List<string> Industries { get; set; } = [];
    public List<TrackStep> Steps { get; set; } = [];
}

public sealed class SendWindow
{
    public List<DayOfWeek> Days { get; set; } = [];
    public int StartHour { get; set; } = 9;
    public int EndHour { get; set; } = 17;
    /// <summary>Used when the lead has no (or an unknown) time zone.</summary>
    public string DefaultTimeZone { get; set; } = "Europe/Berlin";
}

public sealed class FrequencyCap
{
    public int MaxEmails { get; set; } = 2;
    public double PerDays { get; set; } = 7;
}

public sealed class NurtureRules
{
    public List<NurtureTrack> Tracks { get; set; } = [];
    public SendWindow SendWindow { get; set; } = new();
    public FrequencyCap FrequencyCap { get; set; } = new();
    /// <summary>Reaching one of these stages ends nurture: the remaining steps are cancelled.</summary>
    public List<LeadStage> GoalStages { get; set; } = [];
}

public sealed class ValueRules
{
    /// <summary>The close rate assumed while data is thin (the article: about 20 %).</summary>
    public double PriorCloseRate { get; set; } = 0.2;
    /// <summary>How many MQLs' worth of evidence the prior counts as; real data outweighs it as it grows.</summary>
    public double PriorWeight { get; set; } = 10;
    public decimal PriorAverageRevenue { get; set; } = 500m;
    public string Currency { get; set; } = "EUR";
    /// <summary>Only MQLs older than this count for the close rate, so recent ones do not drag it down.</summary>
    public double SalesCycleDays { get; set; } = 30;
}
