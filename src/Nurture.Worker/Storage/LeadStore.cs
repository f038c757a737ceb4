using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;


public sealed record OutboxMessage(long Id, Guid MessageId, string Type, string Payload);

/// <summary>
/// Leads, their history and everything a decision causes, kept with Dapper. Each decision is stored in one transaction:
/// the event in the inbox (its id makes redelivery harmless), the lead with a version check, the transitions, the
/// messages to publish (the outbox) and the nurture steps scheduled or cancelled.
/// </summary>
public sealed partial class LeadStore(Database database, Microsoft.Extensions.Options.IOptions<RejectionOptions>? rejections = null)
{
    private readonly int _maxRejectedBytes = (rejections?.Value ?? new RejectionOptions()).MaxPayloadBytes;

    private static readonly JsonSerializerOptions StateJson = CreateStateJson();

    public Database Database { get; } = database;

    public async Task<StoredLead?> LoadLeadAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var row = await connection.QuerySingleOrDefaultAsync<LeadRow>(new CommandDefinition(
            StoreSql.SelectLeadState, new { leadId }, cancellationToken: cancel));
        return row is null ? null : new StoredLead(ReadState(row.State), row.Version);
    }

    /// <summary>Every MQL with the version it was read at, for the decay job's re-score.</summary>
    public async Task<IReadOnlyList<(Lead Lead, int Version)>> MqlsAsync(CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<(string State, int Version)>(new CommandDefinition(StoreSql.MqlStates, cancellationToken: cancel));
        return rows.Select(r => (ReadState(r.State), r.Version)).ToList();
    }

    /// <summary>The stored history of a lead in time order, as the events were received (erased fields blanked).</summary>
    public async Task<IReadOnlyList<NurtureMessage>> HistoryAsync(string leadId, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var payloads = await connection.QueryAsync<string>(new CommandDefinition(
            StoreSql.SelectHistory, new { leadId }, cancellationToken: cancel));
        return payloads.Select(EventJson.Parse).ToList();
    }

    /// <summary>
    /// The lead's activities (clicks, opens, visits) that happened at or after <paramref name="since"/>, in time order:
    /// found by the index on lead and time, so a lead with a long history costs no more than a new one.
    /// </summary>
    public async Task<IReadOnlyList<LeadActivityRecorded>> ActivitiesSinceAsync(string leadId, DateTimeOffset since, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var payloads = await connection.QueryAsync<string>(new CommandDefinition(
            StoreSql.SelectActivitiesSince, new { leadId, since }, cancellationToken: cancel));
        return payloads.Select(EventJson.Parse).OfType<LeadActivityRecorded>().ToList();
    }

    public async Task<IReadOnlyList<OutboxMessage>> ReadOutboxAsync(int max, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        var rows = await connection.QueryAsync<OutboxRow>(new CommandDefinition(Database.Dialect.ReadOutbox, new { Max = max }, cancellationToken: cancel));
        return rows.Select(r => new OutboxMessage(r.Id, r.MessageId, r.Type, r.Payload)).ToList();
    }

    /// <summary>
    /// Claims up to <paramref name="max"/> unpublished messages for <paramref name="claimer"/> until now + lease and commits,
    /// so no transaction or lock is held while they are published; another relay's rows are skipped, and rows whose
    /// lease ran out (a relay that died) come back.
    /// </summary>
    public async Task<IReadOnlyList<OutboxMessage>> ClaimOutboxAsync(string claimer, int max, DateTimeOffset now, TimeSpan lease, long after = 0, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        if (Database.Dialect.RelayBookkeeping is { } bookkeeping) await connection.ExecuteAsync(new CommandDefinition(bookkeeping, transaction: transaction, cancellationToken: cancel));
        var rows = await connection.QueryAsync<OutboxRow>(new CommandDefinition(Database.Dialect.ClaimOutbox,
            new { Claimer = claimer, Max = max, Now = now, Until = now + lease, After = after }, transaction, cancellationToken: cancel));
        await transaction.CommitAsync(cancel);
        return rows.Select(r => new OutboxMessage(r.Id, r.MessageId, r.Type, r.Payload)).OrderBy(m => m.Id).ToList();
    }

    /// <summary>
    /// Marks the messages the broker confirmed as published (by message id); returns the ids of the rows that were still
    /// this claimer's.
    /// </summary>
    public async Task<IReadOnlyList<long>> MarkPublishedAsync(string claimer, IReadOnlyCollection<Guid> messageIds, DateTimeOffset at, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        await using var transaction = await connection.BeginTransactionAsync(cancel);
        if (Database.Dialect.RelayBookkeeping is { } bookkeeping) await connection.ExecuteAsync(new CommandDefinition(bookkeeping, transaction: transaction, cancellationToken: cancel));
        var marked = new List<long>(messageIds.Count);
        foreach (var chunk in messageIds.Chunk(1000))
        {
            var parameters = Database.Dialect.Ids(chunk);
            parameters.AddDynamicParams(new { at, claimer });
            marked.AddRange(await connection.QueryAsync<long>(new CommandDefinition(Database.Dialect.MarkPublished, parameters, transaction, cancellationToken: cancel)));
        }
        await transaction.CommitAsync(cancel);
        return marked;
    }

    /// <summary>Gives claimed messages (by message id) back for the next round when publishing them failed.</summary>
    public async Task ReleaseOutboxAsync(string claimer, IReadOnlyCollection<Guid> messageIds, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        foreach (var chunk in messageIds.Chunk(1000))
        {
            var parameters = Database.Dialect.Ids(chunk);
            parameters.AddDynamicParams(new { claimer });
            await connection.ExecuteAsync(new CommandDefinition(Database.Dialect.ReleaseOutbox, parameters, cancellationToken: cancel));
        }
    }

    /// <summary>
    /// An event that could not be processed, kept with its reason: its payload cut to Nurture:Rejections:MaxPayloadBytes
    /// with the whole payload's SHA-256 and length, the lead it names, and nothing of it when that lead was erased.
    /// </summary>
    public async Task RecordRejectedAsync(string origin, string reason, string payload, DateTimeOffset at, CancellationToken cancel = default)
    {
        var row = RejectedRow.Of(reason, payload, _maxRejectedBytes);
        await using var connection = await Database.OpenAsync(cancel);
        if (row.LeadId is { } leadId && await connection.ExecuteScalarAsync<string?>(new CommandDefinition(StoreSql.SelectLeadState, new { leadId }, cancellationToken: cancel)) is { } state
            && ReadState(state).Erased)
        {
            row = row with { Reason = LeadErasure.Reason(row.Reason), Payload = Nurture.Core.Erasure.Marker };
        }
        await connection.ExecuteAsync(new CommandDefinition(
            StoreSql.InsertRejected,
            new { at, origin = origin.Length <= 64 ? origin : origin[..64], reason = row.Reason, payload = row.Payload, leadId = row.LeadId, sha256 = row.Sha256, length = row.Length },
            cancellationToken: cancel));
    }

    public async Task<bool> IsSuppressedAsync(string email, CancellationToken cancel = default)
    {
        await using var connection = await Database.OpenAsync(cancel);
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition(
            StoreSql.CountSuppressions, new { hash = EmailHash(email) }, cancellationToken: cancel)) > 0;
    }

    public Task<IReadOnlyDictionary<string, decimal>> ReadSpendAsync(CancellationToken cancel = default) => ReadAsync(SpendAsync, cancel);

    private static async Task<IReadOnlyDictionary<string, decimal>> SpendAsync(Reads reads) =>
        (await reads.QueryAsync<SpendRow>(StoreSql.SpendByChannel)).ToDictionary(r => r.Channel, r => Money(r.Amount), StringComparer.Ordinal);

    public static string EmailHash(string email) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(email.Trim().ToLowerInvariant())));

    internal static Lead ReadState(string json) => JsonSerializer.Deserialize<Lead>(json, StateJson)!;

    internal static string WriteState(Lead lead) => JsonSerializer.Serialize(lead, StateJson);

    /// <summary>Sums come back as INTEGER, REAL, NUMERIC or DECIMAL depending on the provider and the values.</summary>
    private static decimal Money(object? value) => value is null or DBNull ? 0m : decimal.Round(Convert.ToDecimal(value, System.Globalization.CultureInfo.InvariantCulture), 2);

    internal static string Truncate(string text) => text.Length <= 2000 ? text : text[..2000];

    private static JsonSerializerOptions CreateStateJson()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        return options;
    }

    private sealed class LeadRow
    {
        public string State { get; set; } = "";
        public int Version { get; set; }
    }

    private sealed class OutboxRow
    {
        public long Id { get; set; }
        public Guid MessageId { get; set; }
        public string Type { get; set; } = "";
        public string Payload { get; set; } = "";
    }

    private sealed class StageCount
    {
        public string Stage { get; set; } = "";
        public int Leads { get; set; }
    }

    private sealed class SpendRow
    {
        public string Channel { get; set; } = "";
        public object? Amount { get; set; }
    }
}
