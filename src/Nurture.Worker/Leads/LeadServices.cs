using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Leads;

public static class LeadServices
{
    /// <summary>The lead-event handler and what it needs besides the database, the definition and the metrics.</summary>
    public static IServiceCollection AddLeadEvents(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ImportOptions>().Bind(configuration.GetSection(ImportOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ImportOptions>, ImportOptionsCheck>();
        services.AddOptions<RejectionOptions>().Bind(configuration.GetSection(RejectionOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RejectionOptions>, RejectionOptionsCheck>();
        return services
            .AddSingleton<LeadRecords>()
            .AddSingleton<OutboxSignal>()
            .AddSingleton<LeadEventHandler>();
    }

    /// <summary>
    /// The event handler as the worker has it, for commands that run without the bus (`ingest`): what they store waits
    /// in the outbox for the next worker's relay.
    /// </summary>
    public static ServiceProvider WithoutBus(Database database, Definition definition, IConfiguration? configuration = null)
    {
        var services = new ServiceCollection()
            .AddLogging()
            .AddMetrics()
            .AddSingleton(database)
            .AddSingleton(definition)
            .AddSingleton(TimeProvider.System)
            .AddSingleton<LeadStore>()
            .AddSingleton<NurtureMetrics>()
            .AddLeadEvents(configuration ?? new ConfigurationBuilder().Build())
            .BuildServiceProvider();
        // What the worker checks at start, a command checks before its first event.
        _ = services.GetRequiredService<IOptions<ImportOptions>>().Value;
        _ = services.GetRequiredService<IOptions<RejectionOptions>>().Value;
        return services;
    }
}
