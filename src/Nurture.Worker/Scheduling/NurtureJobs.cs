using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Email;
using Nurture.Worker.Leads;
using Nurture.Worker.Messaging;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;
using Quartz;

namespace Nurture.Worker.Scheduling;

/// <summary>
/// Nurture:Schedule: how often Quartz runs each recurring job. The nurture steps themselves are rows in the database
/// (millions of pending steps cost nothing here); Quartz only drives their dispatch, so there is no trigger per email.
/// </summary>
public sealed record ScheduleSettings
{
    public const string Section = "Nurture:Schedule";

    /// <summary>False runs a worker that only consumes events (the jobs run on other instances).</summary>
    public bool Enabled { get; init; } = true;
    public int HandOffCheckMinutes { get; init; } = 15;
    public int DecayCheckMinutes { get; init; } = 60;
    public int ValueSnapshotMinutes { get; init; } = 15;

    public static ScheduleSettings Load(IConfiguration configuration)
    {
        var s = configuration.GetSection(Section);
        var d = new ScheduleSettings();
        return new ScheduleSettings
        {
            Enabled = s.Flag("Enabled", d.Enabled),
            HandOffCheckMinutes = s.WholeNumber("HandOffCheckMinutes", d.HandOffCheckMinutes, 1, 10_080),
            DecayCheckMinutes = s.WholeNumber("DecayCheckMinutes", d.DecayCheckMinutes, 1, 10_080),
            ValueSnapshotMinutes = s.WholeNumber("ValueSnapshotMinutes", d.ValueSnapshotMinutes, 1, 10_080),
        };
    }
}

public static class NurtureSchedule
{
    public static IServiceCollection AddNurtureSchedule(this IServiceCollection services, ScheduleSettings schedule, EmailSettings email)
    {
        services.AddSingleton(schedule);
        if (!schedule.Enabled) return services;
        services.AddQuartz(q =>
        {
            Every<DispatchNurtureEmails>(q, TimeSpan.FromSeconds(email.DispatchSeconds));
            Every<CheckHandOffSla>(q, TimeSpan.FromMinutes(schedule.HandOffCheckMinutes));
            Every<RescoreForDecay>(q, TimeSpan.FromMinutes(schedule.DecayCheckMinutes));
            Every<SnapshotMqlValue>(q, TimeSpan.FromMinutes(schedule.ValueSnapshotMinutes));
        });
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        return services;
    }

    private static void Every<T>(IQuartzBuilder q, TimeSpan interval)
        where T : IJob
    {
        var key = new JobKey(typeof(T).Name, "nurture");
        q.AddJob(typeof(T), j => j.WithIdentity(key));
        q.AddTrigger(t => t.ForJob(key).WithIdentity(typeof(T).Name, "nurture").StartNow()
            .WithSimpleSchedule(s => s.WithInterval(interval).RepeatForever()));
    }
}

/// <summary>
/// Sends the nurture steps that are due. Several workers share them through the claim; one worker never runs it twice
/// at once. When the mail server cannot be used the job stays with it, probing with backoff, and sends again the
/// moment it answers, rather than waiting for its next turn.
/// </summary>
[DisallowConcurrentExecution]
public sealed class DispatchNurtureEmails(NurtureDispatch dispatch, OutboxSignal outbox) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                if (await dispatch.DispatchAllDueAsync(cancellationToken) > 0) outbox.Nudge();
                if (!dispatch.ServerUnavailable) return;
                await dispatch.WaitForServerAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down: the steps not sent are pending, or their claims run out.
        }
    }
}

/// <summary>An MQL sales has not taken up within Qualification:HandOffSlaHours raises HandOffSlaBreached (once per MQL period) and a metric.</summary>
[DisallowConcurrentExecution]
public sealed class CheckHandOffSla(LeadStore store, Definition definition, TimeProvider clock, NurtureMetrics metrics, OutboxSignal outbox) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) => await CheckAsync(cancellationToken);

    public async Task<int> CheckAsync(CancellationToken cancel)
    {
        var sla = definition.Qualification.HandOffSlaHours;
        if (sla <= 0) return 0;
        var now = clock.GetUtcNow();
        var breaches = 0;
        foreach (var (leadId, since, source) in await store.MqlsWaitingSinceAsync(now.AddHours(-sla), cancel))
        {
            var breach = new HandOffSlaBreached
            {
                EventId = Lifecycle.DerivedId(Guid.Empty, $"handoff-sla:{leadId}:{since.ToUniversalTime():O}"), LeadId = leadId, OccurredAt = now,
                MqlSince = since, HoursWaiting = Math.Round((now - since).TotalHours, 1), SlaHours = (int)Math.Ceiling(sla), Source = source,
            };
            if (!await store.RecordHandOffBreachAsync(breach, cancel)) continue;
            metrics.HandOffSlaBreached(source);
            breaches++;
        }
        if (breaches > 0) outbox.Nudge();
        return breaches;
    }
}

/// <summary>Re-scores MQLs as time passes: one whose interest cooled below Qualification:DemoteBelow goes back to Lead.</summary>
[DisallowConcurrentExecution]
public sealed class RescoreForDecay(LeadEventHandler handler, TimeProvider clock) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await handler.RescoreMqlsAsync(clock.GetUtcNow(), cancellationToken);
}

/// <summary>Publishes what an MQL is worth, overall and per source, as MqlValueCalculated (for dashboards that read the bus).</summary>
[DisallowConcurrentExecution]
public sealed class SnapshotMqlValue(LeadStore store, Definition definition, TimeProvider clock, OutboxSignal outbox) : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) => await SnapshotAsync(cancellationToken);

    public async Task<IReadOnlyList<MqlValueCalculated>> SnapshotAsync(CancellationToken cancel)
    {
        var now = clock.GetUtcNow();
        var cohorts = await store.ReadCohortsAsync(now.AddDays(-definition.Value.SalesCycleDays), cancel);
        var (overall, bySource) = MqlValue.EstimateAll(cohorts.OldEnough, definition.Value);
        var estimates = bySource.Prepend(overall).ToList();
        var messages = estimates.Select(v => new MqlValueCalculated
        {
            EventId = Lifecycle.DerivedId(Guid.Empty, $"mql-value:{v.Source}:{now:yyyyMMddHHmm}"), OccurredAt = now, Source = v.Source,
            MqlsInCohort = v.Mqls, Customers = v.Customers, CloseRate = v.CloseRate, CloseRateLow = v.CloseRateLow, CloseRateHigh = v.CloseRateHigh,
            AverageRevenue = v.AverageRevenue, Value = v.Value, ValueLow = v.ValueLow, ValueHigh = v.ValueHigh, Currency = v.Currency,
            DefinitionVersion = definition.Version,
        }).ToList();
        foreach (var m in messages) await store.QueueAsync(m, cancel);
        await store.RecordValueSnapshotAsync(now, estimates, definition.Version, cancel);
        outbox.Nudge();
        return messages;
    }
}
