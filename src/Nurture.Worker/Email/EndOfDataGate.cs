namespace Nurture.Worker.Email;

/// <summary>
/// The stream MailKit writes an SMTP session to (over our own TCP_NODELAY socket, or our TLS stream on port 465). It
/// holds back the write that completes a message's end of data (CRLF . CRLF) until the previous message on the
/// connection is recorded. The server cannot accept a message before it has that terminator, so the record of one
/// message overlaps with rendering and sending the next one's envelope and body, and still no connection ever has two
/// accepted messages that are not recorded: a crash sends at most one per connection twice. The sequence cannot occur
/// inside a body, since SMTP doubles a dot that starts a line.
/// </summary>
internal sealed class EndOfDataGate(Stream inner) : Stream
{
    private Task _before = Task.CompletedTask;
    // The last four bytes written, oldest in the highest byte: the terminator may span two writes.
    private uint _tail;

    /// <summary>The next message's end of data waits for <paramref name="before"/>; if it fails, the message is not finished (an IOException).</summary>
    public void HoldEndOfDataUntil(Task before) => _before = before;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_before.IsCompletedSuccessfully && EndsData(buffer.Span))
        {
            var before = _before;
            _before = Task.CompletedTask;
            try
            {
                await before.WaitAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw new IOException("the previous message on this connection could not be recorded, so this one is not finished", e);
            }
        }
        Remember(buffer.Span);
        await inner.WriteAsync(buffer, cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    private bool EndsData(ReadOnlySpan<byte> written)
    {
        // "\r\n.\r\n" is 0D 0A 2E 0D 0A: the tail so far followed by what is written now.
        ulong last = _tail;
        foreach (var b in written.Length > 5 ? written[^5..] : written) last = (last << 8) | b;
        return (last & 0xFF_FFFF_FFFF) == 0x0D_0A_2E_0D_0A;
    }

    private void Remember(ReadOnlySpan<byte> written)
    {
        foreach (var b in written.Length > 4 ? written[^4..] : written) _tail = (_tail << 8) | b;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override void Flush() => inner.Flush();
    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override bool CanTimeout => inner.CanTimeout;
    public override int ReadTimeout { get => inner.ReadTimeout; set => inner.ReadTimeout = value; }
    public override int WriteTimeout { get => inner.WriteTimeout; set => inner.WriteTimeout = value; }
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}
