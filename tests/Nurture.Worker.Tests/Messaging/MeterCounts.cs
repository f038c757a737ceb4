using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Worker.Metrics;

namespace Nurture.Worker.Tests.Messaging;

/// <summary>Nurture's counters of one host (its own meter factory), read as a scrape would, without a stub in the worker.</summary>
public sealed class MeterCounts : IDisposable
{
    private readonly Dictionary<string, long> _counters = [];
    private readonly Dictionary<string, List<long>> _measurements = [];
    private readonly MeterListener _listener;

    public MeterCounts(IServiceProvider services)
    {
        var meters = services.GetRequiredService<IMeterFactory>();
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Meter.Name == NurtureMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
            },
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (_counters)
            {
                _counters[instrument.Name] = _counters.GetValueOrDefault(instrument.Name) + value;
                if (!_measurements.TryGetValue(instrument.Name, out var list)) _measurements[instrument.Name] = list = [];
                list.Add(value);
            }
        });
        _listener.Start();
    }

    public long this[string name]
    {
        get
        {
            lock (_counters) return _counters.GetValueOrDefault(name);
        }
    }

    /// <summary>Each value recorded (a histogram's measurements), in order.</summary>
    public IReadOnlyList<long> Measurements(string name)
    {
        lock (_counters) return _measurements.TryGetValue(name, out var list) ? [.. list] : [];
    }

    public void Dispose() => _listener.Dispose();
}
