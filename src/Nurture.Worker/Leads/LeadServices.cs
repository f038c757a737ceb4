using Microsoft.Extensions.DependencyInjection;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Leads;

public static class LeadServices
{
    /// <summary>
    /// The event handler as the worker has it, for commands that run without the bus (`ingest`): what they store waits
    /// in the outbox for the next worker's relay.
    /// </summary>
    public static ServiceProvider WithoutBus(Database database, Definition definition) => new ServiceCollection()
        .AddLogging()
        .AddMetrics()
        .AddSingleton(database)
        .AddSingleton(definition)
        .AddSingleton(TimeProvider.System)
        .AddSingleton<LeadStore>()
        .AddSingleton<LeadRecords>()
        .AddSingleton<OutboxSignal>()
        .AddSingleton<NurtureMetrics>()
        .AddSingleton<LeadEventHandler>()
        .BuildServiceProvider();
}
