using System.Globalization;

namespace Nurture.Worker.Cli;

/// <summary>
/// Progress of long work on standard error, so standard output stays the result: a bar redrawn in place on a terminal,
/// a plain line every few seconds otherwise (a log or a pipe), each with the rate and the time left.
/// </summary>
public sealed class Progress : IDisposable
{
    private readonly string _what;
    private readonly string _unit;
    private readonly TextWriter _error;
    private readonly bool _terminal;
    private readonly TimeSpan _every;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly Lock _gate = new();
    private long _total;
    private long _done;
    private string _detail = "";
    private TimeSpan _shown;
    private int _width;
    private bool _finished;

    /// <param name="what">What is under way ("ingest"), the start of every line.</param>
    /// <param name="total">How many units there are, when known (0 when not: no bar, no time left).</param>
    /// <param name="unit">What is counted ("events", "MiB").</param>
    public Progress(string what, long total, string unit)
        : this(what, total, unit, Console.Error, terminal: !Console.IsErrorRedirected, TimeProvider.System)
    {
    }

    /// <param name="error">Where the lines go.</param>
    /// <param name="terminal">Whether that is a terminal, to be redrawn in place.</param>
    /// <param name="time">The clock that paces the lines and times the rate.</param>
    public Progress(string what, long total, string unit, TextWriter error, bool terminal, TimeProvider time)
    {
        _what = what;
        _total = Math.Max(0, total);
        _unit = unit;
        _error = error;
        _terminal = terminal;
        _time = time;
        _started = time.GetTimestamp();
        // A terminal is redrawn often; a log gets a line every few seconds, not thousands.
        _every = _terminal ? TimeSpan.FromMilliseconds(150) : TimeSpan.FromSeconds(2);
    }

    public long Total
    {
        get => Interlocked.Read(ref _total);
        set => Interlocked.Exchange(ref _total, Math.Max(0, value));
    }

    public void Advance(long count = 1, string? detail = null) => Report(Interlocked.Add(ref _done, count), detail);

    /// <summary>Sets how far the work is; shows it when the last showing is old enough.</summary>
    public void Report(long done, string? detail = null)
    {
        lock (_gate)
        {
            if (_finished) return;
            _done = done;
            if (detail is not null) _detail = detail;
            // The first showing waits too: a rate from the first few units says nothing about the time left.
            if (Elapsed - _shown < _every || (_total > 0 && done >= _total)) return;
            _shown = Elapsed;
            Show(final: false);
        }
    }

    /// <summary>The closing line: how much, how long, at what rate. Shown once, however often it is called.</summary>
    public void Done(string? detail = null)
    {
        lock (_gate)
        {
            if (_finished) return;
            _finished = true;
            if (detail is not null) _detail = detail;
            Show(final: true);
        }
    }

    public void Dispose() => Done();

    private TimeSpan Elapsed => _time.GetElapsedTime(_started);

    private void Show(bool final)
    {
        var line = Line(_what, _done, _total, _unit, Elapsed, final, _detail, _terminal ? Bar(_done, _total) : null);
        if (_terminal)
        {
            // Pad over the longer line drawn before; the closing line ends the bar with a newline.
            var padded = line.PadRight(_width);
            _width = Math.Max(_width, line.Length);
            _error.Write("\r" + padded + (final ? Environment.NewLine : ""));
        }
        else
        {
            _error.WriteLine(line);
        }
        _error.Flush();
    }

    internal static string Line(string what, long done, long total, string unit, TimeSpan elapsed, bool final, string detail, string? bar)
    {
        var c = CultureInfo.InvariantCulture;
        var rate = elapsed.TotalSeconds > 0.05 ? done / elapsed.TotalSeconds : 0;
        var parts = new List<string> { what + ":" };
        if (bar is not null) parts.Add(bar);
        parts.Add(total > 0
            ? string.Create(c, $"{done:N0}/{total:N0} {unit} ({100.0 * done / total:0} %)")
            : string.Create(c, $"{done:N0} {unit}"));
        parts.Add(string.Create(c, $"{rate:N0} {unit}/s"));
        if (final) parts.Add($"done in {Duration(elapsed)}");
        else if (total > 0 && rate > 0) parts.Add($"{Duration(TimeSpan.FromSeconds((total - done) / rate))} left");
        else parts.Add($"{Duration(elapsed)} so far");
        if (detail.Length > 0) parts.Add(detail);
        return string.Join("  ", parts);
    }

    private static string Bar(long done, long total)
    {
        const int Width = 24;
        var filled = total > 0 ? (int)Math.Clamp(Width * done / total, 0, Width) : 0;
        return "[" + new string('#', filled) + new string('.', Width - filled) + "]";
    }

    private static string Duration(TimeSpan t) =>
        t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}")
        : string.Create(CultureInfo.InvariantCulture, $"{t.Minutes}:{t.Seconds:00}");
}
