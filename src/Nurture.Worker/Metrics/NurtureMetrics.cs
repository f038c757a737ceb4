using System.Diagnostics.Metrics;

namespace Nurture.Worker.Metrics;

/// <summary>
/// Nurture's own instruments (meter "Nurture"). Labels stay low-cardinality: an event type, never a lead id or an address.
/// Exported as Prometheus text at /metrics by issue 6; counted from the start so nothing is missed.
/// </summary>
public sealed class NurtureMetrics : IDisposable
{
    public const string MeterName = "Nurture";

    private readonly Meter _meter;
    private readonly Counter<long> _processed;
    private readonly Counter<long> _duplicated;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _published;
    private readonly Counter<long> _emailsScheduled;
    private readonly Counter<long> _emailsSent;
    private readonly Counter<long> _emailsFailed;
    private readonly Counter<long> _emailsBounced;
    private readonly Counter<long> _unsubscribes;
    private readonly Counter<long> _slaBreaches;
    private readonly Histogram<double> _dispatchLag;
    private readonly Histogram<long> _batchSize;
    private readonly Counter<long> _transitions;
    private readonly Histogram<double> _timeInStage;

    public NurtureMetrics(IMeterFactory meters, TimeProvider clock)
    {
        _meter = meters.Create(MeterName);
        _processed = _meter.CreateCounter<long>("nurture.events.processed", "{event}", "Events applied to a lead (duplicates not counted).");
        _duplicated = _meter.CreateCounter<long>("nurture.events.duplicated", "{event}", "Events received again after they were applied: acknowledged, not applied twice.");
        _rejected = _meter.CreateCounter<long>("nurture.events.rejected", "{event}", "Events that could not be processed; each is kept in rejected_events with its reason.");
        _published = _meter.CreateCounter<long>("nurture.outbox.published", "{message}", "Messages published from the outbox to the bus.");
        _emailsScheduled = _meter.CreateCounter<long>("nurture.emails.scheduled", "{email}", "Nurture steps scheduled after a send.");
        _emailsSent = _meter.CreateCounter<long>("nurture.emails.sent", "{email}", "Nurture emails handed to SMTP or written to the pickup folder.");
        _emailsFailed = _meter.CreateCounter<long>("nurture.emails.failed", "{email}", "Sends that failed: temporary (tried again later) or permanent.");
        _emailsBounced = _meter.CreateCounter<long>("nurture.emails.bounced", "{email}", "Sends the server refused for good (5xx): the address is suppressed.");
        _unsubscribes = _meter.CreateCounter<long>("nurture.unsubscribes", "{lead}", "Leads that unsubscribed through the one-click link.");
        _slaBreaches = _meter.CreateCounter<long>("nurture.handoff.sla_breaches", "{lead}", "MQLs sales did not accept within the hand-off SLA.");
        _dispatchLag = _meter.CreateHistogram<double>("nurture.dispatch.lag", "s", "How late a due step was when it was claimed.");
        _batchSize = _meter.CreateHistogram<long>("nurture.events.batch_size", "{event}", "Events stored in one transaction, by way in.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] });
        _transitions = _meter.CreateCounter<long>("nurture.stage.transitions", "{transition}", "Stage transitions by from, to and lead source.");
        _timeInStage = _meter.CreateHistogram<double>("nurture.stage.duration", "s", "How long a lead stayed in a stage before it moved on.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [3600, 21600, 86400, 259200, 604800, 1209600, 2592000, 7776000, 15552000] });
        FunnelGauges.Register(_meter, () => Latest, clock);
        ExperimentGauges.Register(_meter, () => LatestExperiments);
        // Every counter shows from the first scrape (at 0), so dashboards and rate() have a series before the first event.
        foreach (var counter in new[] { _processed, _duplicated, _rejected, _published, _emailsScheduled, _emailsSent, _emailsFailed, _emailsBounced, _unsubscribes, _slaBreaches, _transitions })
        {
            counter.Add(0);
        }
    }

    private long _handled;

    /// <summary>Events this process has finished with (applied, duplicate or rejected): how `--feed` knows its events are through.</summary>
    public long Handled => Interlocked.Read(ref _handled);

    public void Processed(string type)
    {
        _processed.Add(1, new KeyValuePair<string, object?>("type", type));
        Interlocked.Increment(ref _handled);
    }

    public void Duplicated(string type)
    {
        _duplicated.Add(1, new KeyValuePair<string, object?>("type", type));
        Interlocked.Increment(ref _handled);
    }

    public void Rejected(string origin)
    {
        _rejected.Add(1, new KeyValuePair<string, object?>("origin", origin));
        Interlocked.Increment(ref _handled);
    }

    public void Published(int count) => _published.Add(count);

    public void EmailScheduled(string track) => _emailsScheduled.Add(1, new KeyValuePair<string, object?>("track", track));

    public void EmailSent(string track) => _emailsSent.Add(1, new KeyValuePair<string, object?>("track", track));

    public void EmailFailed(string kind) => _emailsFailed.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void EmailBounced() => _emailsBounced.Add(1);

    public void Unsubscribed() => _unsubscribes.Add(1);

    public void HandOffSlaBreached(string source) => _slaBreaches.Add(1, new KeyValuePair<string, object?>("source", source));

    /// <summary>How many events one transaction stored: small when traffic is light, up to the batch size in a rush.</summary>
    public void Batch(string origin, int events) => _batchSize.Record(events, new KeyValuePair<string, object?>("origin", origin));

    public void DispatchLag(double seconds) => _dispatchLag.Record(Math.Max(0, seconds));

    /// <summary>The funnel as last read from the database (FunnelRefresher); the gauges report it.</summary>
    public FunnelReport? Latest { get; set; }

    /// <summary>The experiments as last judged from the database (FunnelRefresher); their gauges report it.</summary>
    public ExperimentReport? LatestExperiments { get; set; }

    /// <summary>Counts what a batch of stored events did: applied or duplicate, and each stage transition with its time in stage.</summary>
    public void Applied(IEnumerable<Leads.AppliedEvent> applied)
    {
        foreach (var a in applied)
        {
            if (a.Duplicate)
            {
                Duplicated(a.Event.GetType().Name);
                continue;
            }
            if (a.Refused is not null) continue;
            Processed(a.Event.GetType().Name);
            // A late event's decision re-lists the whole history; its transitions were counted when they first happened.
            if (a.Late || a.Decision is null) continue;
            foreach (var t in a.Decision.Transitions)
            {
                _transitions.Add(1, new("from", t.From.ToString()), new("to", t.To.ToString()), new("source", a.Decision.Lead.Profile.Source));
                _timeInStage.Record(t.InStage.TotalSeconds, new KeyValuePair<string, object?>("stage", t.From.ToString()));
            }
        }
    }

    public void Dispose() => _meter.Dispose();
}
