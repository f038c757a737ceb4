using Microsoft.Extensions.Time.Testing;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Tests;

/// <summary>Progress on standard error, paced by a fake clock: what a log and a terminal get.</summary>
public class When_long_work_shows_progress
{
    [Fact]
    public void Should_write_a_line_to_a_log_every_two_seconds_with_the_rate_and_time_left_and_close_with_the_total()
    {
        var time = new FakeTimeProvider();
        var log = new StringWriter();
        var progress = new Progress("ingest", 1_000, "events", log, terminal: false, time);

        time.Advance(TimeSpan.FromSeconds(1));
        progress.Advance(100); // too soon: a rate from the first second says little
        time.Advance(TimeSpan.FromSeconds(1.5));
        progress.Advance(150);
        time.Advance(TimeSpan.FromSeconds(1));
        progress.Advance(50); // one second after the last line: none
        time.Advance(TimeSpan.FromSeconds(1.5));
        progress.Advance(200);
        time.Advance(TimeSpan.FromSeconds(3));
        progress.Advance(500); // all done: the closing line says so, not a line with no time left
        progress.Done();
        progress.Dispose();

        Assert.Equal(
            [
                "ingest:  250/1,000 events (25 %)  100 events/s  0:07 left",
                "ingest:  500/1,000 events (50 %)  100 events/s  0:05 left",
                "ingest:  1,000/1,000 events (100 %)  125 events/s  done in 0:08",
            ],
            log.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Should_redraw_one_line_on_a_terminal_and_end_it_once_done()
    {
        var time = new FakeTimeProvider();
        var terminal = new StringWriter();
        var progress = new Progress("replay", 0, "KiB", terminal, terminal: true, time);

        time.Advance(TimeSpan.FromSeconds(0.2));
        progress.Report(12_000, "1,200 leads");
        time.Advance(TimeSpan.FromSeconds(0.1));
        progress.Report(13_000, "1,300 leads"); // within 150 ms of the last drawing
        time.Advance(TimeSpan.FromSeconds(0.1));
        progress.Report(16_000, "9 leads");
        progress.Done();

        var first = "replay:  [........................]  12,000 KiB  60,000 KiB/s  0:00 so far  1,200 leads";
        var shorter = "replay:  [........................]  16,000 KiB  40,000 KiB/s  0:00 so far  9 leads";
        var closing = "replay:  [........................]  16,000 KiB  40,000 KiB/s  done in 0:00  9 leads";
        Assert.True(shorter.Length < first.Length);
        // Each drawing pads over the longest before it; only the closing one ends the line.
        Assert.Equal("\r" + first + "\r" + shorter.PadRight(first.Length) + "\r" + closing.PadRight(first.Length) + Environment.NewLine,
            terminal.ToString());
    }
}
