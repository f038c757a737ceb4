using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Nurture.Core;
using Nurture.Worker.Leads;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Storage;

/// <summary>The event handler on a test database, built as the worker builds it, without a bus.</summary>
public static class Handlers
{
    private static readonly IMeterFactory Meters = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    public static LeadEventHandler For(Database database, Definition definition, TimeProvider clock, OutboxSignal? outbox = null) =>
        new(new LeadRecords(database), new LeadStore(database), definition, clock, new NurtureMetrics(Meters, clock), outbox ?? new OutboxSignal(),
            Microsoft.Extensions.Options.Options.Create(new ImportOptions()), NullLogger<LeadEventHandler>.Instance);

    /// <summary>Stores events as `ingest` and the API do (conflicts tried again), received at <paramref name="now"/>.</summary>
    public static Task<IReadOnlyList<AppliedEvent>> ApplyAsync(this Database database, Definition definition, DateTimeOffset now, params Contracts.NurtureMessage[] events) =>
        For(database, definition, new FixedClock(now)).HandleNowAsync(events, "test", CancellationToken.None);

    /// <summary>Stores events as history moved in from another tool (`ingest --history`, `?mode=history`).</summary>
    public static Task<IReadOnlyList<AppliedEvent>> ApplyHistoryAsync(this Database database, Definition definition, DateTimeOffset now, params Contracts.NurtureMessage[] events) =>
        For(database, definition, new FixedClock(now)).HandleNowAsync(events, "test", CancellationToken.None, EventMode.History);

    /// <summary>One sent email recorded as the dispatch records its group of them; false when the claim was lost.</summary>
    public static async Task<bool> RecordSentAsync(this LeadStore store, ClaimedStep step, string claimer, string messageId, DateTimeOffset sentAt, StepDue? next, CancellationToken cancel = default) =>
        (await store.RecordSentAsync([new SentEmail(step, messageId, sentAt, next)], claimer, cancel))[0];

    public sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
