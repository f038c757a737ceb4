namespace Nurture.Worker.Tests.Messaging;

/// <summary>Waiting tolerates what is not there yet, and still fails on what is wrong.</summary>
public class When_a_test_waits_for_background_work
{
    [Fact]
    public async Task Should_take_a_file_not_written_yet_as_not_yet()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("nurture-eventually-").FullName, "later", "done.txt");
        var writer = Task.Run(async () =>
        {
            await Task.Delay(300);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllTextAsync(path, "done");
        });

        var text = await Eventually.Until(() => File.ReadAllTextAsync(path), t => t == "done", TimeSpan.FromSeconds(30), "the file");
        await writer;

        Assert.Equal("done", text);
    }

    [Fact]
    public async Task Should_fail_at_once_on_an_error_that_is_not_absence_and_name_what_it_waited_for_on_time_out()
    {
        await Assert.ThrowsAsync<InvalidOperationException>(() => Eventually.Until<int>(() => throw new InvalidOperationException("broken"), _ => true));
        var timeout = await Assert.ThrowsAsync<TimeoutException>(() =>
            Eventually.Until(() => File.ReadAllTextAsync("/nonexistent/nurture/file"), _ => true, TimeSpan.FromMilliseconds(200), "a file nobody writes"));

        Assert.Contains("a file nobody writes", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("not there yet", timeout.Message, StringComparison.Ordinal);
    }
}
