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

    public NurtureMetrics(IMeterFactory meters)
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

    public void DispatchLag(double seconds) => _dispatchLag.Record(Math.Max(0, seconds));

    public void Dispose() => _meter.Dispose();
}
