using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Nurture.Contracts;

/// <summary>
/// The documented JSON form (docs/events.md): camelCase, enums as camelCase strings, a "type" field
/// naming the event (it may stand anywhere in the object). Publishers that do not use .NET send this.
/// Unknown fields are ignored, so a publisher on a newer schema version does not break an older worker.
/// </summary>
public static class EventJson
{
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>Event type names as they appear in the "type" field.</summary>
    public static IReadOnlyDictionary<string, Type> Types { get; } =
        typeof(NurtureMessage).GetCustomAttributes(typeof(JsonDerivedTypeAttribute), inherit: false)
            .Cast<JsonDerivedTypeAttribute>()
            .ToDictionary(a => (string)a.TypeDiscriminator!, a => a.DerivedType, StringComparer.OrdinalIgnoreCase);

    /// <summary>The events publishers send Nurture; the others are Nurture's own, published for everyone else.</summary>
    public static IReadOnlySet<Type> Incoming { get; } = new HashSet<Type>
    {
        typeof(LeadCaptured), typeof(LeadActivityRecorded), typeof(LeadAcceptedBySales), typeof(LeadRejectedBySales),
        typeof(LeadQualifiedBySales), typeof(DealWon), typeof(DealLost), typeof(LeadDisqualified), typeof(LeadUnsubscribed),
        typeof(EmailBounced), typeof(LeadErased), typeof(CampaignSpendRecorded),
    };

    public static string Write(NurtureMessage message) => JsonSerializer.Serialize(message, Options);

    public static NurtureMessage Parse(string json) =>
        TryParse(json, out var message, out var error) ? message : throw new FormatException(error);

    /// <summary>Reads one event; on failure <paramref name="error"/> names the field and says why.</summary>
    public static bool TryParse(string json, [NotNullWhen(true)] out NurtureMessage? message, [NotNullWhen(false)] out string? error)
    {
        message = null;
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = $"$: the event must be a JSON object, not {root.ValueKind}.";
                return false;
            }
            if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                error = "type: missing or not a string; name the event, e.g. \"type\": \"LeadCaptured\".";
                return false;
            }
            var typeName = typeElement.GetString()!;
            if (!Types.TryGetValue(typeName, out var type))
            {
                error = $"type: '{Truncate(typeName)}' is not a known event (known: {string.Join(", ", Types.Keys)}).";
                return false;
            }
            message = (NurtureMessage)root.Deserialize(type, Options)!;
        }
        catch (JsonException e)
        {
            error = Describe(e);
            return false;
        }
        error = Check(message);
        if (error is null) return true;
        message = null;
        return false;
    }

    /// <summary>Limits that keep one bad publisher from filling the database; the first field over one is named.</summary>
    public static string? Check(NurtureMessage message)
    {
        if (message.EventId == Guid.Empty) return "eventId: missing or empty; give every event its own id (a UUID) so redelivery is harmless.";
        if (message.SchemaVersion != 1) return $"schemaVersion: {message.SchemaVersion} is not supported; this worker reads version 1.";
        if (message is LeadEvent lead)
        {
            if (string.IsNullOrWhiteSpace(lead.LeadId)) return "leadId: missing or empty.";
            if (Over(lead.LeadId, Limits.Id)) return $"leadId: longer than {Limits.Id} characters.";
        }
        return message switch
        {
            LeadCaptured c when !c.Email.Contains('@', StringComparison.Ordinal) => "email: not an email address (no '@').",
            LeadCaptured c when Over(c.Email, Limits.Email) => $"email: longer than {Limits.Email} characters.",
            LeadCaptured c when c.Email.Any(char.IsControl) => "email: contains control characters.",
            LeadCaptured c => FirstOver(("firstName", c.FirstName), ("lastName", c.LastName), ("company", c.Company), ("role", c.Role),
                ("industry", c.Industry), ("country", c.Country), ("timeZone", c.TimeZone), ("language", c.Language), ("source", c.Source))
                ?? (c.CompanySize is < 0 ? "companySize: negative." : null),
            LeadActivityRecorded a when !Enum.IsDefined(a.Activity) => "activity: not a known activity type.",
            LeadActivityRecorded a when a.Properties is { Count: > Limits.Properties } => $"properties: more than {Limits.Properties} entries.",
            LeadActivityRecorded a when a.Properties?.FirstOrDefault(p => Over(p.Key, Limits.Text) || Over(p.Value, Limits.LongText)) is { Key: not null } p =>
                $"properties.{Truncate(p.Key)}: key over {Limits.Text} or value over {Limits.LongText} characters.",
            LeadRejectedBySales r => Long("reason", r.Reason),
            LeadDisqualified d => Long("reason", d.Reason),
            DealLost l => Long("reason", l.Reason),
            DealWon w when w.Revenue < 0 => "revenue: negative; record a refund as its own deal outside Nurture.",
            DealWon w when w.Currency.Length != 3 => $"currency: '{Truncate(w.Currency)}' is not an ISO 4217 code such as EUR.",
            CampaignSpendRecorded s when s.Amount < 0 => "amount: negative.",
            CampaignSpendRecorded s when s.Currency.Length != 3 => $"currency: '{Truncate(s.Currency)}' is not an ISO 4217 code such as EUR.",
            CampaignSpendRecorded s when s.PeriodEnd < s.PeriodStart => "periodEnd: before periodStart.",
            CampaignSpendRecorded s => FirstOver(("channel", s.Channel)),
            _ => null,
        };
    }

    public static class Limits
    {
        public const int Id = 128;
        public const int Email = 254;
        public const int Text = 256;
        public const int LongText = 2000;
        public const int Properties = 50;
    }

    private static string? Long(string field, string? value) => Over(value, Limits.LongText) ? $"{field}: longer than {Limits.LongText} characters." : null;

    private static string? FirstOver(params (string Field, string? Value)[] fields) =>
        fields.FirstOrDefault(f => Over(f.Value, Limits.Text)) is { Field: not null } f ? $"{f.Field}: longer than {Limits.Text} characters." : null;

    private static bool Over(string? value, int limit) => value is not null && value.Length > limit;

    private static string Truncate(string value) => value.Length <= 40 ? value : value[..40] + "…";

    private static string Describe(JsonException e)
    {
        var path = string.IsNullOrEmpty(e.Path) ? "$" : e.Path;
        var field = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;
        var message = e.Message;
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut];
        if (message.Contains("missing required properties", StringComparison.Ordinal))
        {
            var start = message.IndexOf("including: ", StringComparison.Ordinal);
            var names = start > 0 ? message[(start + 11)..].TrimEnd('.') : "?";
            return $"{names.Replace("'", "", StringComparison.Ordinal)}: required but missing.";
        }
        return $"{field}: {message}";
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            AllowOutOfOrderMetadataProperties = true,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            RespectNullableAnnotations = true,
            MaxDepth = 16,
            // Readable names (Müller) in NDJSON files; this form is never embedded in HTML.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
