using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using MailKit.Net.Smtp;
using Nurture.Worker.Tests.Email;
using Quartz;

namespace Nurture.Benchmarks;

/// <summary>
/// The approach Nurture's own schedule table replaces: Quartz.NET with its ADO.NET job store on PostgreSQL and one
/// durable job with one trigger per email, each job sending its email over a shared pool of the same number of
/// persistent TCP_NODELAY connections. Quartz's defaults otherwise (10 threads, one trigger acquired at a time).
/// </summary>
public static class DispatchQuartz
{
    private static Channel<SmtpClient> s_pool = Channel.CreateUnbounded<SmtpClient>();
    private static int s_remaining;
    private static TaskCompletionSource s_done = new();

    public static async Task<double> RunAsync(string connectionString, PipeliningSmtpServer sink, int emails, int connections)
    {
        s_pool = Channel.CreateUnbounded<SmtpClient>();
        for (var c = 0; c < connections; c++) await s_pool.Writer.WriteAsync(await DispatchBench.ConnectAsync(sink.Port));
        s_remaining = emails;
        s_done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var services = new ServiceCollection().AddLogging();
        services.AddQuartz(q =>
        {
            q.UseDefaultThreadPool(t => t.MaxConcurrency = 10);
            q.UsePersistentStore(s =>
            {
                s.UsePostgres(connectionString);
                s.UseSystemTextJsonSerializer();
                s.ProvisionSchema(); // Quartz creates its own tables in the benchmark's database

            });
        });
        await using var provider = services.BuildServiceProvider();
        var scheduler = await provider.GetRequiredService<ISchedulerFactory>().GetScheduler();
        var scheduling = Stopwatch.StartNew();
        var at = DateTimeOffset.UtcNow.AddSeconds(5);
        for (var i = 0; i < emails; i++)
        {
            var job = JobBuilder.Create<SendEmailJob>().WithIdentity($"email-{i}", "nurture").UsingJobData("i", i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Build();
            await scheduler.ScheduleJob(job, TriggerBuilder.Create().WithIdentity($"email-{i}", "nurture").StartAt(at).Build());
        }
        Console.WriteLine($"Quartz: {emails:N0} jobs and triggers stored in {scheduling.Elapsed.TotalSeconds:F1} s");

        var before = sink.AcceptedCount;
        await scheduler.Start();
        var wait = at - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        var clock = Stopwatch.StartNew();
        await s_done.Task.WaitAsync(TimeSpan.FromMinutes(5));
        clock.Stop();
        await scheduler.Shutdown(waitForJobsToComplete: true);
        while (s_pool.Reader.TryRead(out var client))
        {
            await client.DisconnectAsync(quit: true);
            client.Dispose();
        }
        return DispatchBench.Check(sink.AcceptedCount - before, emails, "Quartz") / clock.Elapsed.TotalSeconds;
    }

    /// <summary>One email: takes a connection from the pool, sends, gives it back.</summary>
    public sealed class SendEmailJob : IJob
    {
        public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
        {
            var i = int.Parse(context.MergedJobDataMap.GetString("i")!, System.Globalization.CultureInfo.InvariantCulture);
            var client = await s_pool.Reader.ReadAsync(cancellationToken);
            try
            {
                await client.SendAsync(DispatchBench.Message(1_000_000 + i), cancellationToken);
            }
            finally
            {
                await s_pool.Writer.WriteAsync(client, CancellationToken.None);
            }
            if (Interlocked.Decrement(ref s_remaining) == 0) s_done.TrySetResult();
        }
    }
}
