namespace Nurture.Worker.Tests.Messaging;

/// <summary>
/// Waits for something the worker does in the background, failing with what was last seen. What the worker has not
/// made yet (a queue, a file, a table, a listening port) is "not yet", never a failure: see <see cref="NotThereYet"/>.
/// </summary>
public static class Eventually
{
    public static async Task<T> Until<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan? within = null, string what = "the condition", Func<Exception, bool>? notYet = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        notYet ??= NotThereYet;
        string lastSeen;
        while (true)
        {
            try
            {
                var last = await read();
                if (done(last)) return last;
                lastSeen = $"{last}";
            }
            catch (Exception e) when (notYet(e))
            {
                lastSeen = $"not there yet ({e.GetType().Name}: {e.Message})";
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Waited for {what}; last seen: {lastSeen}");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// What reading something before the worker made it throws: a queue the broker does not know yet (404 closes the
    /// channel), a file or folder not written yet, a table not migrated yet, a port nobody listens on yet.
    /// </summary>
    public static bool NotThereYet(Exception e) => e switch
    {
        RabbitMQ.Client.Exceptions.OperationInterruptedException o => o.ShutdownReason?.ReplyCode == 404,
        FileNotFoundException or DirectoryNotFoundException => true,
        HttpRequestException { StatusCode: null, InnerException: System.Net.Sockets.SocketException } => true,
        Microsoft.Data.Sqlite.SqliteException s => s.Message.Contains("no such table", StringComparison.Ordinal),
        Npgsql.PostgresException p => p.SqlState == Npgsql.PostgresErrorCodes.UndefinedTable,
        _ => false,
    };
}
