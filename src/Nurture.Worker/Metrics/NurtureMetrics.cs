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

    public NurtureMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _processed = _meter.CreateCounter<long>("nurture.events.processed", "{event}", "Events applied to a lead (duplicates not counted).");
        _duplicated = _meter.CreateCounter<long>("nurture.events.duplicated", "{event}", "Events received again after they were applied: acknowledged, not applied twice.");
        _rejected = _meter.CreateCounter<long>("nurture.events.rejected", "{event}", "Events that could not be processed; each is kept in rejected_events with its reason.");
        _published = _meter.CreateCounter<long>("nurture.outbox.published", "{message}", "Messages published from the outbox to the bus.");
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

    public void Dispose() => _meter.Dispose();
}
