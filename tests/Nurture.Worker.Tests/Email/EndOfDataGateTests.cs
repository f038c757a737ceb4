using System.Text;
using Nurture.Worker.Email;

namespace Nurture.Worker.Tests.Email;

/// <summary>The stream that keeps the server from accepting a connection's next email before its last one is recorded.</summary>
public class When_a_connection_sends_its_next_email_while_the_last_one_is_being_recorded
{
    private static readonly byte[] Envelope = Encoding.ASCII.GetBytes("MAIL FROM:<a@nurture.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    private static readonly byte[] Body = Encoding.ASCII.GetBytes("Subject: hi\r\n\r\n..a line starting with a dot\r\n");

    [Theory]
    [InlineData("\r\n.\r\n", "")]
    [InlineData("\r\n.", "\r\n")] // the terminator split over two writes
    [InlineData("", ".\r\n")]
    public async Task Should_send_everything_but_the_end_of_data_until_the_record_is_written(string first, string second)
    {
        var wire = new MemoryStream();
        await using var gate = new EndOfDataGate(wire);
        var recorded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.HoldEndOfDataUntil(recorded.Task);

        await gate.WriteAsync(Envelope);
        await gate.WriteAsync(Body);
        var end = WriteAsync(gate, first, second);
        await Task.Delay(100);

        Assert.False(end.IsCompleted, "the end of data waits for the record");
        Assert.DoesNotContain("\r\n.\r\n", Encoding.ASCII.GetString(wire.ToArray()), StringComparison.Ordinal);
        recorded.SetResult();
        await end.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.EndsWith("\r\n.\r\n", Encoding.ASCII.GetString(wire.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_leave_the_email_unfinished_when_the_record_fails()
    {
        var wire = new MemoryStream();
        await using var gate = new EndOfDataGate(wire);
        gate.HoldEndOfDataUntil(Task.FromException(new InvalidOperationException("database gone")));
        await gate.WriteAsync(Envelope);
        await gate.WriteAsync(Body);

        var failure = await Assert.ThrowsAsync<IOException>(() => gate.WriteAsync(Encoding.ASCII.GetBytes("\r\n.\r\n")).AsTask());

        Assert.IsType<InvalidOperationException>(failure.InnerException);
        Assert.DoesNotContain("\r\n.\r\n", Encoding.ASCII.GetString(wire.ToArray()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Should_not_hold_commands_or_a_body_that_never_ends_a_message()
    {
        var wire = new MemoryStream();
        await using var gate = new EndOfDataGate(wire);
        gate.HoldEndOfDataUntil(new TaskCompletionSource().Task); // never recorded

        // A dot-stuffed line ("..") inside the body is not the end of data; NOOP, RSET and the next envelope go through.
        await gate.WriteAsync(Envelope).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        await gate.WriteAsync(Encoding.ASCII.GetBytes("\r\n..\r\n")).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        await gate.WriteAsync(Encoding.ASCII.GetBytes("RSET\r\nNOOP\r\n")).AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        Assert.EndsWith("NOOP\r\n", Encoding.ASCII.GetString(wire.ToArray()), StringComparison.Ordinal);
    }

    private static async Task WriteAsync(Stream stream, string first, string second)
    {
        if (first.Length > 0) await stream.WriteAsync(Encoding.ASCII.GetBytes(first));
        if (second.Length > 0) await stream.WriteAsync(Encoding.ASCII.GetBytes(second));
    }
}
