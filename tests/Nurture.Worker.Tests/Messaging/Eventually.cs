namespace Nurture.Worker.Tests.Messaging;

/// <summary>Waits for something the worker does in the background, failing with what was last seen.</summary>
public static class Eventually
{
    public static async Task<T> Until<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan? within = null, string what = "the condition")
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        T last;
        while (true)
        {
            last = await read();
            if (done(last)) return last;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Waited for {what}; last seen: {last}");
            await Task.Delay(50);
        }
    }
}
