using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

/// <summary>What an experiment's report reads: who got the step and when, and what those leads did afterwards.</summary>
public sealed partial class LeadStore
{
    /// <summary>
    /// Every lead that was sent step <paramref name="step"/> of <paramref name="track"/> (its first send, if it was
    /// enrolled more than once), with its MQL transitions, its won deals and whether a person clicked a link of that
    /// step. The variant is not stored: it follows from the lead's id and the experiment's name.
    /// </summary>
    public Task<IReadOnlyList<Exposure>> ReadExposuresAsync(string track, int step, CancellationToken cancel = default) =>
        // One snapshot: an MQL, deal or click stored between two of these reads is either in all of them or in none.
        ReadTogetherAsync<IReadOnlyList<Exposure>>(async reads =>
        {
            var args = new { track, step };
            var sent = await reads.QueryAsync<SentRow>(ExperimentSql.Sent, args);
            var mqls = (await reads.QueryAsync<MqlRow>(ExperimentSql.MqlTransitions, args)).ToLookup(r => r.LeadId, r => r.At, StringComparer.Ordinal);
            var deals = (await reads.QueryAsync<DealRow>(ExperimentSql.Deals, args)).ToLookup(r => r.LeadId, r => (r.At, Amount(r.Revenue)), StringComparer.Ordinal);
            var clicked = (await reads.QueryAsync<string>(ExperimentSql.Clicks, args)).ToHashSet(StringComparer.Ordinal);
            return sent.Select(s => new Exposure(s.LeadId, s.SentAt, mqls[s.LeadId].ToList(), deals[s.LeadId].ToList(), clicked.Contains(s.LeadId))).ToList();
        }, cancel);

    private sealed class SentRow
    {
        public string LeadId { get; set; } = "";
        public DateTimeOffset SentAt { get; set; }
    }

    private sealed class MqlRow
    {
        public string LeadId { get; set; } = "";
        public DateTimeOffset At { get; set; }
    }

    private sealed class DealRow
    {
        public string LeadId { get; set; } = "";
        public DateTimeOffset At { get; set; }
        public object? Revenue { get; set; }
    }
}

/// <summary>The experiment report's SQL, the same on every provider (the SQL Server parse test reads it).</summary>
internal static class ExperimentSql
{
    public const string Sent = """
        SELECT lead_id, MIN(sent_at) AS sent_at FROM nurture_steps
        WHERE track = @track AND step = @step AND status = 'sent' AND sent_at IS NOT NULL
        GROUP BY lead_id
        """;

    private const string Exposed = "SELECT s.lead_id FROM nurture_steps s WHERE s.track = @track AND s.step = @step AND s.status = 'sent'";

    public const string MqlTransitions = "SELECT t.lead_id, t.at FROM stage_transitions t WHERE t.to_stage = 'Mql' AND t.lead_id IN (" + Exposed + ")";

    public const string Deals = "SELECT d.lead_id, d.at, d.revenue FROM deals d WHERE d.lead_id IN (" + Exposed + ")";

    // A person's clicks only: a link scanner's or prefetcher's are kept and count for nothing.
    public const string Clicks = "SELECT DISTINCT c.lead_id FROM email_clicks c WHERE c.track = @track AND c.step = @step AND c.by_machine = 0 AND c.lead_id IN (" + Exposed + ")";
}
