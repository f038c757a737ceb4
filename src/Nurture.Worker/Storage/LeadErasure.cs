using System.Data.Common;
using System.Text.Json;
using Dapper;
using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Worker.Storage;

/// <summary>
/// A privacy erase, in the transaction of the batch that holds it: every stored text about the lead that came from
/// outside is rewritten to <see cref="Erasure.Marker"/> — its history's payloads, its transition reasons, the messages
/// about it in the outbox (published or not; webhooks read them there), its rejected events. Rows are rewritten, never
/// deleted, so the funnel, the metrics and replay count what they counted before. The lead row itself is already
/// erased by the domain (<see cref="LeadProfile.Erased"/>).
/// </summary>
internal static class LeadErasure
{
    public static async Task EraseAsync(DbConnection connection, DbTransaction transaction, string leadId, CancellationToken cancel)
    {
        CommandDefinition Command(string sql, object parameters) => new(sql, parameters, transaction, cancellationToken: cancel);

        foreach (var (eventId, payload) in await connection.QueryAsync<(Guid, string)>(Command(ErasureSql.SelectEvents, new { leadId })))
        {
            if (!EventJson.TryParse(payload, out var stored, out _)) continue;
            var blank = EventJson.Write(Erasure.Blank(stored));
            if (blank != payload) await connection.ExecuteAsync(Command(StoreSql.UpdateEventPayload, new { payload = blank, eventId }));
        }

        foreach (var (id, reason) in await connection.QueryAsync<(long, string)>(Command(ErasureSql.SelectTransitions, new { leadId })))
        {
            var erased = Erasure.Reason(reason);
            if (erased != reason) await connection.ExecuteAsync(Command(ErasureSql.UpdateTransitionReason, new { reason = erased, id }));
        }

        var pattern = PayloadPattern(leadId);
        foreach (var (id, payload) in await connection.QueryAsync<(long, string)>(Command(ErasureSql.SelectOutbox, new { pattern })))
        {
            if (!EventJson.TryParse(payload, out var message, out _) || message is not LeadEvent { } about || about.LeadId != leadId) continue;
            var blank = EventJson.Write(Erasure.Blank(message));
            if (blank != payload) await connection.ExecuteAsync(Command(ErasureSql.UpdateOutboxPayload, new { payload = blank, id }));
        }

        foreach (var (id, reason) in await connection.QueryAsync<(long, string)>(Command(ErasureSql.SelectRejected, new { leadId, pattern })))
        {
            await connection.ExecuteAsync(Command(ErasureSql.UpdateRejected, new { reason = Reason(reason), payload = Erasure.Marker, leadId, id }));
        }
    }

    /// <summary>
    /// A rejection's reason with what it may quote of the value cut off: the field it names is kept
    /// ("email: 'anna@…' is not a bare email address" → "email: erased").
    /// </summary>
    public static string Reason(string reason)
    {
        var colon = reason.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && colon <= 80 ? reason[..colon] + ": " + Erasure.Marker : Erasure.Marker;
    }

    /// <summary>A LIKE pattern for payloads naming the lead as the documented JSON form writes it ("leadId":"…"); '!' escapes.</summary>
    private static string PayloadPattern(string leadId)
    {
        var written = "\"leadId\":" + JsonSerializer.Serialize(leadId, EventJson.Options);
        return "%" + written.Replace("!", "!!", StringComparison.Ordinal).Replace("%", "!%", StringComparison.Ordinal)
            .Replace("_", "!_", StringComparison.Ordinal).Replace("[", "![", StringComparison.Ordinal) + "%";
    }
}

/// <summary>The erase's statements, for every provider (the SQL Server parse test reads them).</summary>
internal static class ErasureSql
{
    public const string SelectEvents = "SELECT event_id, payload FROM lead_events WHERE lead_id = @leadId";

    public const string SelectTransitions = "SELECT id, reason FROM stage_transitions WHERE lead_id = @leadId";

    public const string UpdateTransitionReason = "UPDATE stage_transitions SET reason = @reason WHERE id = @id";

    // The outbox names no lead in a column of its own; an erase is rare enough to look for it in the payloads.
    public const string SelectOutbox = "SELECT id, payload FROM outbox WHERE payload LIKE @pattern ESCAPE '!'";

    public const string UpdateOutboxPayload = "UPDATE outbox SET payload = @payload WHERE id = @id";

    // Rows rejected before rejected_events had a lead_id column are found by their payload.
    public const string SelectRejected = "SELECT id, reason FROM rejected_events WHERE lead_id = @leadId OR (lead_id IS NULL AND payload LIKE @pattern ESCAPE '!')";

    public const string UpdateRejected = "UPDATE rejected_events SET reason = @reason, payload = @payload, lead_id = @leadId WHERE id = @id";
}
