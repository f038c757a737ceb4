using System.Globalization;
using System.Text;
using Dapper;
using Npgsql;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Cli;
using Nurture.Worker.Storage;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;
using Xunit.Abstractions;
using Nurture.Worker.Tests;

namespace Nurture.Faults.Tests;

/// <summary>The scenarios run one after another (they stop servers and kill processes), in parallel with the other test projects.</summary>
[CollectionDefinition(Name)]
public sealed class FaultCollection : ICollectionFixture<FaultRig>
{
    public const string Name = "faults";
}

/// <summary>
/// The fault suite's own servers, started once for all scenarios: a private PostgreSQL cluster and a private RabbitMQ
/// node on free loopback ports (see <see cref="PrivatePostgres"/>, <see cref="PrivateRabbitMq"/>). Each scenario gets
/// its own database, queue and folder. Where PostgreSQL's or RabbitMQ's binaries are missing the scenarios are skipped,
/// saying so. Everything is stopped and deleted at the end, whatever happened.
/// </summary>
public sealed class FaultRig : IAsyncLifetime
{
    public const string ApiKey = "fault-suite-api-key-0123456789";
    public const string UnsubscribeKey = "fault-suite-unsubscribe-key-of-at-least-32-characters";

    private readonly List<string> _folders = [];

    public PrivatePostgres? Postgres { get; private set; }
    public PrivateRabbitMq? RabbitMq { get; private set; }
    public string? Unavailable { get; private set; }
    public string Machine { get; } = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}";

    public async Task InitializeAsync()
    {
        var postgres = PrivatePostgres.FindBinaries();
        var rabbit = PrivateRabbitMq.FindServer();
        if (postgres is null || rabbit is null)
        {
            Unavailable = "The fault suite starts a PostgreSQL cluster and a RabbitMQ node of its own: "
                + (postgres is null ? "no /usr/lib/postgresql/*/bin/initdb " : "")
                + (rabbit is null ? "no /usr/lib/rabbitmq/bin/rabbitmq-server " : "")
                + "here. Install Debian's postgresql and rabbitmq-server (./test.sh does).";
            return;
        }
        // Both at once: each takes seconds to boot on a busy machine.
        var pg = PrivatePostgres.StartAsync(postgres);
        var mq = PrivateRabbitMq.StartAsync(rabbit);
        try
        {
            Postgres = await pg;
        }
        finally
        {
            try
            {
                RabbitMq = await mq;
            }
            catch when (Postgres is null)
            {
                // The PostgreSQL failure is the one reported.
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (RabbitMq is not null) await RabbitMq.DisposeAsync();
        if (Postgres is not null) await Postgres.DisposeAsync();
        foreach (var folder in _folders)
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left in the temp folder.
            }
        }
    }

    public void Require() => Skip.If(Unavailable is not null, Unavailable);

    public string NewFolder(string name)
    {
        var folder = Directory.CreateTempSubdirectory($"nurture-faults-{name}-").FullName;
        lock (_folders) _folders.Add(folder);
        return folder;
    }

    /// <summary>A database of the scenario's own on the private cluster.</summary>
    public async Task<string> NewDatabaseAsync(string name)
    {
        var database = $"faults_{name}_{Guid.NewGuid():N}"[..40];
        await Postgres!.CreateDatabaseAsync(database);
        return Postgres.ConnectionString(database);
    }

    /// <summary>
    /// A scalar from the scenario's database; -1 while the database or the table is not there (yet) or the server is
    /// stopped, so callers can poll through an outage.
    /// </summary>
    public static async Task<long> CountAsync(string connectionString, string sql)
    {
        try
        {
            await using var connection = new NpgsqlConnection(PrivatePostgres.Unpooled(connectionString));
            await connection.OpenAsync();
            return await connection.ExecuteScalarAsync<long>(sql);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return -1;
        }
    }

    /// <summary>The worker's settings: the scenario's database, and secrets in the environment as operators set them.</summary>
    public static Dictionary<string, string> WorkerEnvironment(string database) => new()
    {
        ["ConnectionStrings__Nurture"] = database,
        ["Nurture__Database__Provider"] = "PostgreSql",
        ["Nurture__Api__Key"] = ApiKey,
        ["Nurture__Email__UnsubscribeKey"] = UnsubscribeKey,
        ["Logging__LogLevel__Default"] = "Warning",
    };

    // ---- the private broker ----

    public async Task<IConnection> ConnectAsync() =>
        await new ConnectionFactory { Uri = RabbitMq!.Amqp, ClientProvidedName = "nurture-faults" }.CreateConnectionAsync();

    /// <summary>Publishes plain JSON as a publisher that is not .NET does, persistent, each confirmed by the broker.</summary>
    public async Task PublishAsync(string exchange, IEnumerable<byte[]> bodies)
    {
        await using var connection = await ConnectAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        var properties = new BasicProperties { ContentType = "application/json", Persistent = true };
        foreach (var chunk in bodies.Chunk(500))
        {
            await Task.WhenAll(chunk.Select(body => channel.BasicPublishAsync(exchange, "", mandatory: true, properties, body).AsTask()));
        }
    }

    /// <summary>Messages ready in a queue; 0 when it does not exist (an error queue appears with its first message), -1 when the broker is away.</summary>
    public async Task<long> QueueCountAsync(string queue)
    {
        try
        {
            await using var connection = await ConnectAsync();
            await using var channel = await connection.CreateChannelAsync();
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            return 0;
        }
        catch (BrokerUnreachableException)
        {
            return -1;
        }
    }

    /// <summary>Takes every message of a queue, with its MT-Fault-Message header.</summary>
    public async Task<List<(byte[] Body, string Reason)>> TakeAllAsync(string queue)
    {
        var taken = new List<(byte[], string)>();
        await using var connection = await ConnectAsync();
        try
        {
            await using var channel = await connection.CreateChannelAsync();
            while (await channel.BasicGetAsync(queue, autoAck: true) is { } got)
            {
                object? header = null;
                got.BasicProperties.Headers?.TryGetValue("MT-Fault-Message", out header);
                taken.Add((got.Body.ToArray(), header is byte[] bytes ? Encoding.UTF8.GetString(bytes) : header?.ToString() ?? ""));
            }
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            // Not there: nothing was dead-lettered.
        }
        return taken;
    }

    // ---- events and replay ----

    /// <summary>Realistic events (the sample's three businesses), the first <paramref name="count"/> in time order.</summary>
    public static IReadOnlyList<NurtureMessage> Events(int count)
    {
        var definition = DefaultDefinition.Create();
        for (var leads = count / 4 + 100; ; leads *= 2)
        {
            var events = SampleLeads.Generate(leads, seed: 7, new DateTimeOffset(2026, 1, 5, 8, 0, 0, TimeSpan.Zero), days: 120, definition);
            if (events.Count >= count) return events.Take(count).ToList();
        }
    }

    /// <summary>
    /// The stored leads against `replay` of the same events: leads missing, and leads whose stage or score differ (what
    /// an event lost or applied twice leaves behind), scored at the last event as replay scores them.
    /// </summary>
    public static async Task<(int Missing, int Differing, string Examples)> CompareWithReplayAsync(string database, IReadOnlyList<NurtureMessage> events)
    {
        var definition = DefaultDefinition.Create();
        var replay = Replay.Run(events, definition);
        var now = events.Max(e => e.OccurredAt);
        await using var connection = new NpgsqlConnection(PrivatePostgres.Unpooled(database));
        await connection.OpenAsync();
        var stored = (await connection.QueryAsync<string>("SELECT state FROM leads")).Select(LeadStore.ReadState).ToDictionary(l => l.Id);
        var missing = replay.Leads.Where(l => !stored.ContainsKey(l.LeadId)).Select(l => l.LeadId).ToList();
        var differing = replay.Leads.Where(l => stored.ContainsKey(l.LeadId)).Where(expected =>
        {
            var lead = Lifecycle.Rescore(stored[expected.LeadId], now, definition, Guid.Empty).Lead;
            return lead.Stage != expected.Stage || Scoring.Score(lead, now, definition).Total != expected.Score;
        }).Select(l => l.LeadId).ToList();
        return (missing.Count, differing.Count, string.Join(", ", missing.Concat(differing).Take(5)));
    }

    // ---- figures ----

    /// <summary>Prints a scenario's figures (test output) and appends them to artifacts/faults.md for docs/reliability.md.</summary>
    public void Report(ITestOutputHelper output, string scenario, IEnumerable<string> figures)
    {
        var text = new StringBuilder($"### {scenario}\n\n");
        foreach (var line in figures) text.Append("- ").Append(line).Append('\n');
        output.WriteLine(text.ToString());
        var folder = Path.Combine(Repository.Root, "artifacts");
        Directory.CreateDirectory(folder);
        var file = Path.Combine(folder, "faults.md");
        lock (_folders)
        {
            File.AppendAllText(file, $"{text}\n_{DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}, {Machine}, load average {LoadAverage()}_\n\n");
        }
    }

    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
