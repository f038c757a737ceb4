using Nurture.Contracts;

namespace Nurture.Core;

public sealed record CalibrationOptions
{
    /// <summary>The latest leads by capture time held out of the fit to judge it (not a random share: the future is what matters).</summary>
    public double HeldOutShare { get; init; } = 0.3;
    /// <summary>Pick the threshold so this share of leads becomes an MQL; by default the share the current definition qualifies.</summary>
    public double? TargetMqlRate { get; init; }
    /// <summary>Pick the lowest threshold whose MQLs close at least this often (hand-off precision).</summary>
    public double? TargetPrecision { get; init; }
    /// <summary>The pull toward the current points: λ of the penalty λ/2 Σ (w − prior)², in log-odds per unit.</summary>
    public double L2 { get; init; } = 1;
    /// <summary>Fewer customers than this among the training leads is too thin to trust.</summary>
    public int MinimumCustomers { get; init; } = 30;
    /// <summary>A rule fewer training leads than this have stays near its current points, and is listed as such.</summary>
    public int MinimumLeadsPerRule { get; init; } = 10;
    /// <summary>The proposal's version; by default the current one with "-calibrated-" and the latest event's date.</summary>
    public string? Version { get; init; }
}

/// <summary>Who the fit learned from and who judged it.</summary>
public sealed record CalibrationData(
    int Leads, int TakenUpBySales, int Deals, int Training, int TrainingCustomers, int HeldOut, int HeldOutCustomers,
    DateTimeOffset HeldOutFrom, DateTimeOffset LatestEvent);

/// <summary>One rule's points now and proposed; the weight is the model's log-odds per unit (one activity, or having the attribute).</summary>
public sealed record PointChange(string Setting, double Current, double Proposed, double Weight, int TrainingLeadsWithIt, bool LittleData);

public sealed record ThresholdChoice(double Current, double Proposed, string Target, double TargetValue, double TrainingMqlRate, double? TrainingPrecision);

/// <summary>Score band: held-out leads taken up by sales in it, the conversion the definition's score predicted for them (fitted on the training leads) and what happened.</summary>
public sealed record ScoreBand(double From, double To, int Leads, double Predicted, double Observed);

/// <summary>A definition judged on the held-out leads.</summary>
public sealed record HeldOutJudgement(string Definition, double? Auc, int Mqls, double MqlRate, ValueEstimate MqlValue, IReadOnlyList<ScoreBand> Bands);

public sealed record CalibrationResult(
    CalibrationData Data,
    bool TooThin,
    IReadOnlyList<string> Notes,
    IReadOnlyList<PointChange> Points,
    ThresholdChoice Threshold,
    HeldOutJudgement Current,
    HeldOutJudgement Proposed,
    Definition Proposal);

/// <summary>
/// `calibrate`: fits the definition's points to won and lost deals. Each lead with a won or lost deal is one example: its
/// features are what marketing knew when sales first acted on it (accepted, rejected, qualified…; the events before), its
/// outcome is whether the deal was won. Only leads sales took up at least a sales cycle before the latest event count, so
/// that slow deals have had their time (as for the MQL value). The fit is a logistic regression over the same rules the
/// definition scores, pulled toward the current points; the points are put back on the definition's scale.
/// </summary>
public static class Calibration
{
    private sealed record Example(string LeadId, DateTimeOffset CapturedAt, Lead AtHandOff, bool Won);

    public static CalibrationResult Run(IReadOnlyCollection<NurtureMessage> events, Definition current, CalibrationOptions options)
    {
        if (options.HeldOutShare is <= 0 or >= 1) throw new ArgumentException($"held-out share: {options.HeldOutShare} must lie between 0 and 1 (0.3 holds out the latest 30 %).");
        if (options.TargetMqlRate is { } r && r is <= 0 or > 1) throw new ArgumentException($"target MQL rate: {r} must lie above 0 and at most 1 (20 % is 0.2).");
        if (options.TargetPrecision is { } p && p is <= 0 or > 1) throw new ArgumentException($"target precision: {p} must lie above 0 and at most 1.");
        if (options.TargetMqlRate is not null && options.TargetPrecision is not null) throw new ArgumentException("give a target MQL rate or a target precision, not both.");
        if (!(options.L2 > 0)) throw new ArgumentException($"L2: {options.L2} must be positive.");

        var byLead = events.OfType<LeadEvent>().DistinctBy(e => e.EventId).GroupBy(e => e.LeadId, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderBy(e => e.OccurredAt).ThenBy(e => e.EventId).ToList(), StringComparer.Ordinal);
        if (byLead.Count == 0) throw new ArgumentException("there are no lead events to learn from.");
        var latest = events.Max(e => e.OccurredAt);
        var notes = new List<string>();

        var captured = byLead.ToDictionary(l => l.Key, l => l.Value.OfType<LeadCaptured>().Select(c => c.OccurredAt).DefaultIfEmpty(l.Value[0].OccurredAt).Min(), StringComparer.Ordinal);
        var examples = new List<Example>();
        var takenUp = 0;
        foreach (var (id, history) in byLead)
        {
            var first = history.FindIndex(IsSalesEvent);
            if (first < 0) continue;
            takenUp++;
            if (!history.Any(e => e is DealWon or DealLost)) continue;
            if (!MqlValue.InCohort(history[first].OccurredAt, latest, current.Value)) continue;
            Lead? lead = null;
            foreach (var e in history.Take(first)) lead = Lifecycle.Decide(lead, e, current).Lead;
            examples.Add(new Example(id, captured[id], lead ?? Lead.New(id, history[first].OccurredAt), history.Any(e => e is DealWon)));
        }
        examples.Sort((a, b) => a.CapturedAt != b.CapturedAt ? a.CapturedAt.CompareTo(b.CapturedAt) : string.CompareOrdinal(a.LeadId, b.LeadId));
        var heldOutCount = (int)Math.Round(examples.Count * options.HeldOutShare, MidpointRounding.AwayFromZero);
        if (examples.Count - heldOutCount < 2 || heldOutCount < 1)
        {
            throw new ArgumentException($"{examples.Count} leads have a won or lost deal and were taken up by sales at least {current.Value.SalesCycleDays} days (Value:SalesCycleDays) before the latest event; calibrate needs more to learn from and to judge by.");
        }
        var training = examples[..^heldOutCount];
        var heldOut = examples[^heldOutCount..];
        var heldOutFrom = heldOut[0].CapturedAt;
        var trainingWon = training.Count(e => e.Won);
        if (trainingWon == 0 || trainingWon == training.Count)
        {
            throw new ArgumentException($"the {training.Count} training leads (captured before {heldOutFrom:yyyy-MM-dd}) are all {(trainingWon == 0 ? "lost" : "won")}; there is nothing to tell apart.");
        }
        var data = new CalibrationData(byLead.Count, takenUp, examples.Count, training.Count, trainingWon, heldOut.Count, heldOut.Count(e => e.Won), heldOutFrom, latest);
        var tooThin = trainingWon < options.MinimumCustomers;
        if (tooThin)
        {
            notes.Add($"Too thin to trust: {trainingWon} customers among {training.Count} training leads (fewer than {options.MinimumCustomers}). The points stay near the current ones; --out refuses to write unless --force.");
        }

        // The fit: features as the current definition scores them, the current points (in log-odds) as the prior.
        var features = ScoreFeatures.Of(current);
        var x = training.Select(e => ScoreFeatures.Values(e.AtHandOff, current, features)).ToList();
        var y = training.Select(e => e.Won).ToList();
        var currentPoints = features.Select(f => f.Points).ToList();
        var currentScores = x.Select(row => Points(row, currentPoints)).ToList();
        var perPoint = Logistic.Fit(currentScores.Select(s => new[] { s }).ToList(), y, [0], 1e-6)[1];
        if (perPoint <= 0) notes.Add("The current score does not rank the training leads at all (its fitted slope is not positive): the prior is weak.");

        // Points back on the definition's scale: the proposal spends as many points on activities (the sum of caps) as the
        // current one. The prior is the current points in log-odds: first at what a point of the current score is worth,
        // then at the scale the first fit found, so that a rule without data keeps its points exactly. A rule keeps its
        // sign: where the data says a rule that gives points should take them (or the reverse), it is left out (0 points).
        var activity = Enumerable.Range(0, features.Count).Where(j => features[j].Kind == FeatureKind.Activity).ToList();
        var currentSpend = activity.Sum(j => Math.Abs(features[j].Points) * features[j].CountCap);
        var scale = Math.Max(perPoint, 0.001);
        var zero = new bool[features.Count];
        var weights = new double[features.Count + 1];
        for (var round = 0; round < 2; round++)
        {
            var prior = features.Select(f => scale * f.Points).ToList();
            while (true)
            {
                weights = Logistic.Fit(x, y, prior, options.L2, zero);
                // One rule at a time, the one furthest on the wrong side: leaving it out can bring the others back.
                var flipped = Enumerable.Range(0, features.Count).Where(j => !zero[j] && features[j].Points != 0 && Math.Sign(weights[j + 1]) == -Math.Sign(features[j].Points))
                    .OrderByDescending(j => Math.Abs(weights[j + 1])).ThenBy(j => j).ToList();
                if (flipped.Count == 0) break;
                zero[flipped[0]] = true;
            }
            var fittedSpend = activity.Sum(j => Math.Abs(weights[j + 1]) * features[j].CountCap);
            if (round == 0 && currentSpend > 0 && fittedSpend > 1e-6) scale = fittedSpend / currentSpend;
        }
        var dropped = Enumerable.Range(0, features.Count).Where(j => zero[j]).Select(j => features[j].Setting).ToList();
        if (dropped.Count > 0) notes.Add($"The data goes against the sign of {dropped.Count} rule(s), set to 0 points: {string.Join(", ", dropped)}.");
        var highIntent = current.Qualification.HighIntentActivities.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var proposedPoints = new double[features.Count];
        var changes = new List<PointChange>();
        for (var j = 0; j < features.Count; j++)
        {
            var f = features[j];
            var points = Math.Round(weights[j + 1] / scale, MidpointRounding.AwayFromZero);
            if (points == 0) points = 0; // no "-0" in the file
            if (f.Kind == FeatureKind.Activity && highIntent.Contains(f.Key) && points < 1)
            {
                notes.Add($"{f.Key} is a high-intent activity (Qualification:HighIntentActivities) but the data gives it {points} points: kept at 1, so the definition stays valid. Consider taking it off that list.");
                points = 1;
            }
            proposedPoints[j] = points;
            var with = x.Count(row => row[j] != 0);
            changes.Add(new PointChange(f.Setting, f.Points, points, Math.Round(weights[j + 1], 4), with, with < options.MinimumLeadsPerRule));
        }
        var little = changes.Where(c => c.LittleData).ToList();
        if (little.Count > 0) notes.Add($"{little.Count} rules had fewer than {options.MinimumLeadsPerRule} training leads each (e.g. {string.Join(", ", little.Take(4).Select(c => c.Setting))}): they stay near their current points.");

        var proposal = ScoreFeatures.WithPoints(current, features, proposedPoints);
        proposal.Version = options.Version ?? $"{current.Version}-calibrated-{latest:yyyyMMdd}";
        var maxFit = DefinitionCheck.MaxFit(proposal.Scoring.Fit);
        if (proposal.Qualification.MinimumFit > maxFit)
        {
            notes.Add($"Qualification:MinimumFit ({proposal.Qualification.MinimumFit}) is above the best fit the proposal gives ({maxFit}): lowered to it.");
            proposal.Qualification.MinimumFit = maxFit;
        }

        // The threshold, by replaying the training period's leads under the proposal.
        var trainingEvents = byLead.Where(l => captured[l.Key] < heldOutFrom).SelectMany(l => l.Value).ToList();
        var heldOutEvents = byLead.Where(l => captured[l.Key] >= heldOutFrom).SelectMany(l => l.Value).ToList();
        var trainingLeads = byLead.Count(l => captured[l.Key] < heldOutFrom);
        var candidates = trainingEvents;
        (double Rate, double? Precision) Outcome(Definition d)
        {
            var leads = Replay.Run(candidates, d, latest).Leads;
            var mqls = leads.Where(l => FirstMql(l) is { } at && MqlValue.InCohort(at, latest, d.Value)).ToList();
            return (leads.Count(l => FirstMql(l) is not null) / (double)Math.Max(1, trainingLeads),
                mqls.Count == 0 ? null : mqls.Count(l => l.Transitions.Any(t => t.To == LeadStage.Customer)) / (double)mqls.Count);
        }
        var maxScore = proposal.Scoring.Activities.Values.Where(a => a.Points > 0).Sum(a => a.Cap) + maxFit;
        Definition At(double threshold)
        {
            var d = ScoreFeatures.WithPoints(proposal, [], []);
            d.Version = proposal.Version;
            d.Qualification.MqlThreshold = threshold;
            d.Qualification.DemoteBelow = current.Qualification.DemoteBelow <= 0 ? 0
                : Math.Min(threshold - 1, Math.Round(current.Qualification.DemoteBelow * threshold / current.Qualification.MqlThreshold, MidpointRounding.AwayFromZero));
            if (d.Qualification.DemoteBelow < 0) d.Qualification.DemoteBelow = 0;
            return d;
        }
        var currentRate = options.TargetMqlRate is null && options.TargetPrecision is null ? Outcome(current).Rate : 0;
        // Only leads that qualify at the lowest threshold can qualify at a higher one: the search replays just those.
        var possible = Replay.Run(trainingEvents, At(1), latest).Leads.Where(l => FirstMql(l) is not null).Select(l => l.LeadId).ToHashSet(StringComparer.Ordinal);
        candidates = trainingEvents.Where(e => possible.Contains(e.LeadId)).ToList();
        string target;
        double targetValue;
        Func<(double Rate, double? Precision), bool> reached;
        if (options.TargetPrecision is { } precision)
        {
            (target, targetValue) = ("precision", precision);
            reached = o => o.Precision is null || o.Precision >= precision;
        }
        else
        {
            var rate = options.TargetMqlRate ?? currentRate;
            (target, targetValue) = (options.TargetMqlRate is null ? "mqlRate (the current definition's)" : "mqlRate", Math.Round(rate, 4));
            reached = o => o.Rate <= rate;
        }
        // The lowest whole threshold that reaches the target: MQLs thin out (and close more often) as it rises.
        int low = 1, high = Math.Max(1, (int)Math.Floor(maxScore));
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (reached(Outcome(At(mid)))) high = mid;
            else low = mid + 1;
        }
        var chosen = At(low);
        var chosenOutcome = Outcome(chosen);
        if (options.TargetPrecision is null && low > 1)
        {
            // The MQL rate steps down as the threshold rises: the step just below may land nearer the target.
            var below = At(low - 1);
            var belowOutcome = Outcome(below);
            if (Math.Abs(belowOutcome.Rate - targetValue) < Math.Abs(chosenOutcome.Rate - targetValue)) (low, chosen, chosenOutcome) = (low - 1, below, belowOutcome);
        }
        if (options.TargetPrecision is not null && chosenOutcome.Precision is null)
        {
            throw new ArgumentException($"no threshold makes the training leads' MQLs close at {options.TargetPrecision:P0} or more; try a lower --target-precision.");
        }
        if (options.TargetPrecision is null && chosenOutcome.Rate < targetValue - 0.02)
        {
            notes.Add($"The proposal cannot qualify {targetValue:P1} of the training leads: at the lowest threshold ({low}) {chosenOutcome.Rate:P1} become MQLs (its other rules, high intent and engagements, hold the rest back).");
        }
        proposal.Qualification.MqlThreshold = chosen.Qualification.MqlThreshold;
        proposal.Qualification.DemoteBelow = chosen.Qualification.DemoteBelow;
        proposal.EnsureValid();
        var threshold = new ThresholdChoice(current.Qualification.MqlThreshold, low, target, targetValue, Math.Round(chosenOutcome.Rate, 4), chosenOutcome.Precision is { } cp ? Math.Round(cp, 4) : null);

        return new CalibrationResult(data, tooThin, notes, changes, threshold,
            Judge(current, training, heldOut, heldOutEvents, latest), Judge(proposal, training, heldOut, heldOutEvents, latest), proposal);
    }

    private static bool IsSalesEvent(LeadEvent e) => e is LeadAcceptedBySales or LeadRejectedBySales or LeadQualifiedBySales or DealWon or DealLost or LeadDisqualified;

    private static DateTimeOffset? FirstMql(LeadOutcome lead) => lead.Transitions.FirstOrDefault(t => t.To == LeadStage.Mql)?.At;

    private static double Points(double[] values, List<double> points)
    {
        var sum = 0.0;
        for (var j = 0; j < values.Length; j++) sum += values[j] * points[j];
        return sum;
    }

    /// <summary>The score a definition gives a lead as it stood at hand-off, without decay (the hand-off is the moment that matters).</summary>
    private static double Score(Lead lead, Definition d) => Scoring.Score(lead, lead.LastActivityAt ?? lead.FirstSeenAt, d).Total;

    private static HeldOutJudgement Judge(Definition d, IReadOnlyList<Example> training, IReadOnlyList<Example> heldOut, List<LeadEvent> heldOutEvents, DateTimeOffset latest)
    {
        var trainingScores = training.Select(e => Score(e.AtHandOff, d)).ToList();
        var platt = Logistic.Fit(trainingScores.Select(s => new[] { s }).ToList(), training.Select(e => e.Won).ToList(), [0], 1e-6);
        var scores = heldOut.Select(e => Score(e.AtHandOff, d)).ToList();
        var outcomes = heldOut.Select(e => e.Won).ToList();
        var auc = Logistic.Auc(scores, outcomes);

        // Five bands of (about) equal size by score; leads with the same score stay in one band.
        var order = Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ToList();
        var bands = new List<ScoreBand>();
        for (var start = 0; start < order.Count;)
        {
            var end = Math.Min(order.Count, start + Math.Max(1, (int)Math.Ceiling(order.Count / 5.0)));
            while (end < order.Count && scores[order[end]] == scores[order[end - 1]]) end++;
            var members = order[start..end];
            bands.Add(new ScoreBand(scores[members[0]], scores[members[^1]], members.Count,
                Math.Round(members.Average(i => Logistic.Sigmoid(platt[0] + platt[1] * scores[i])), 4),
                Math.Round(members.Count(i => outcomes[i]) / (double)members.Count, 4)));
            start = end;
        }

        var replay = Replay.Run(heldOutEvents, d, latest);
        var leads = Math.Max(1, replay.Leads.Count);
        var mqls = replay.Leads.Count(l => FirstMql(l) is not null);
        return new HeldOutJudgement($"{d.Name} {d.Version}", auc is { } a ? Math.Round(a, 4) : null, mqls, Math.Round(mqls / (double)leads, 4), replay.Summary.MqlValue, bands);
    }
}
