using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace Nurture.Contracts;

/// <summary>
/// The documented JSON form (docs/events.md) and the one strict reader for it, used by every way in (the bus, HTTP,
/// `replay`, `ingest`): UTF-8 (a leading byte-order mark is skipped), camelCase names matched exactly, each field at
/// most once, enums as their exact camelCase names, numbers as JSON numbers, date-times with an offset inside
/// <see cref="Limits"/>, an email as a bare address. Unknown fields are ignored, so a publisher on a newer schema
/// version does not break an older worker. The JSON Schemas in schemas/ say the same (a test holds both to the same cases).
/// </summary>
public static partial class EventJson
{
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    /// <summary>Event type names as they appear in the "type" field, spelled exactly.</summary>
    public static IReadOnlyDictionary<string, Type> Types { get; } =
        typeof(NurtureMessage).GetCustomAttributes(typeof(JsonDerivedTypeAttribute), inherit: false)
            .Cast<JsonDerivedTypeAttribute>()
            .ToDictionary(a => (string)a.TypeDiscriminator!, a => a.DerivedType, StringComparer.Ordinal);

    /// <summary>The events publishers send Nurture; the others are Nurture's own, published for everyone else.</summary>
    public static IReadOnlySet<Type> Incoming { get; } = new HashSet<Type>
    {
        typeof(LeadCaptured), typeof(LeadActivityRecorded), typeof(LeadAcceptedBySales), typeof(LeadRejectedBySales),
        typeof(LeadQualifiedBySales), typeof(DealWon), typeof(DealLost), typeof(LeadDisqualified), typeof(LeadUnsubscribed),
        typeof(EmailBounced), typeof(LeadErased), typeof(CampaignSpendRecorded),
    };

    private static readonly string IncomingList = string.Join(", ", Types.Where(t => Incoming.Contains(t.Value)).Select(t => t.Key));

    public static string Write(NurtureMessage message) => JsonSerializer.Serialize(message, Options);

    public static NurtureMessage Parse(string json) =>
        TryParse(json, out var message, out var error) ? message : throw new FormatException(error);

    /// <summary>Reads one event of any type (Nurture's own stored and outgoing messages too); on failure <paramref name="error"/> names the field and says why.</summary>
    public static bool TryParse(string json, [NotNullWhen(true)] out NurtureMessage? message, [NotNullWhen(false)] out string? error) =>
        TryParse(Encoding.UTF8.GetBytes(json), out message, out error);

    /// <summary>Reads one event of any type from UTF-8 bytes: invalid UTF-8 is refused here, a leading byte-order mark skipped.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, [NotNullWhen(true)] out NurtureMessage? message, [NotNullWhen(false)] out string? error)
    {
        message = null;
        if (utf8.StartsWith(Bom)) utf8 = utf8[Bom.Length..];
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            error = "$: not UTF-8 text; send the event as UTF-8.";
            return false;
        }
        try
        {
            using var document = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = $"$: the event must be a JSON object, not {root.ValueKind}.";
                return false;
            }
            error = Duplicate(root, "");
            if (error is not null) return false;
            if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            {
                error = "type: missing or not a string; name the event, e.g. \"type\": \"LeadCaptured\".";
                return false;
            }
            var typeName = typeElement.GetString()!;
            if (!Types.TryGetValue(typeName, out var type))
            {
                var hint = Types.Keys.FirstOrDefault(k => string.Equals(k, typeName, StringComparison.OrdinalIgnoreCase)) is { } near ? $" (did you mean '{near}'? names are case-sensitive)" : "";
                error = $"type: '{Truncate(typeName)}' is not an event Nurture reads{hint}; the events it reads are {IncomingList}.";
                return false;
            }
            error = Shape(root, FieldsOf(type), "");
            if (error is not null) return false;
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

    /// <summary>
    /// The reader of every way in (bus, HTTP, `replay`, `ingest`): <see cref="TryParse(ReadOnlySpan{byte}, out NurtureMessage?, out string?)"/>
    /// and only the <see cref="Incoming"/> types; an event Nurture publishes is refused with the same reason everywhere.
    /// </summary>
    public static bool TryParseIncoming(ReadOnlySpan<byte> utf8, [NotNullWhen(true)] out NurtureMessage? message, [NotNullWhen(false)] out string? error)
    {
        if (!TryParse(utf8, out message, out error)) return false;
        if (Incoming.Contains(message.GetType())) return true;
        error = $"type: '{message.GetType().Name}' is an event Nurture publishes, not one it reads; the events it reads are {IncomingList}.";
        message = null;
        return false;
    }

    /// <summary>Limits that keep one bad publisher from filling the database, and rules every event meets however it arrived; the first field breaking one is named.</summary>
    public static string? Check(NurtureMessage message)
    {
        if (message.EventId == Guid.Empty) return "eventId: missing or empty; give every event its own id (a UUID) so redelivery is harmless.";
        if (message.SchemaVersion != 1) return $"schemaVersion: {message.SchemaVersion} is not supported; this worker reads version 1.";
        if (OutOfRange(message.OccurredAt)) return $"occurredAt: {message.OccurredAt:O} {Limits.RangeText}";
        if (message is LeadEvent lead)
        {
            if (string.IsNullOrWhiteSpace(lead.LeadId)) return "leadId: missing or empty.";
            if (Over(lead.LeadId, Limits.Id)) return $"leadId: longer than {Limits.Id} characters.";
        }
        return message switch
        {
            LeadCaptured c when Over(c.Email, Limits.Email) => $"email: longer than {Limits.Email} characters.",
            LeadCaptured c when !EmailRegex().IsMatch(c.Email) => $"email: '{Truncate(c.Email)}' is not a bare email address such as name@example.com (one '@', no spaces, no name or angle brackets).",
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
            EmailBounced b when !Enum.IsDefined(b.Kind) => "kind: not hard or soft.",
            DealWon w when w.Revenue < 0 => "revenue: negative; record a refund as its own deal outside Nurture.",
            DealWon w when w.Revenue > Limits.MaxMoney => $"revenue: more than {Limits.MaxMoney.ToString(CultureInfo.InvariantCulture)}, the most Nurture keeps (18 digits, 2 after the point).",
            DealWon w when !CurrencyRegex().IsMatch(w.Currency) => $"currency: '{Truncate(w.Currency)}' is not an ISO 4217 code such as EUR.",
            CampaignSpendRecorded s when s.Amount < 0 => "amount: negative.",
            CampaignSpendRecorded s when s.Amount > Limits.MaxMoney => $"amount: more than {Limits.MaxMoney.ToString(CultureInfo.InvariantCulture)}, the most Nurture keeps (18 digits, 2 after the point).",
            CampaignSpendRecorded s when !CurrencyRegex().IsMatch(s.Currency) => $"currency: '{Truncate(s.Currency)}' is not an ISO 4217 code such as EUR.",
            CampaignSpendRecorded s when OutOfRange(s.PeriodStart) => $"periodStart: {s.PeriodStart:yyyy-MM-dd} {Limits.RangeText}",
            CampaignSpendRecorded s when OutOfRange(s.PeriodEnd) => $"periodEnd: {s.PeriodEnd:yyyy-MM-dd} {Limits.RangeText}",
            CampaignSpendRecorded s when s.PeriodEnd < s.PeriodStart => "periodEnd: before periodStart.",
            CampaignSpendRecorded s => FirstOver(("channel", s.Channel)),
            _ => null,
        };
    }

    /// <summary>The rules in one place; the JSON Schemas in schemas/ carry the same patterns (a test compares them).</summary>
    public static class Limits
    {
        public const int Id = 128;
        public const int Email = 254;
        public const int Text = 256;
        public const int LongText = 2000;
        public const int Properties = 50;
        /// <summary>The largest amount of money the databases keep (NUMERIC(18,2)).</summary>
        public const decimal MaxMoney = 9_999_999_999_999_999.99m;

        /// <summary>Dates are accepted from the year 2000 to 2099: anything else is a typo or a placeholder (9999-12-31), not an event.</summary>
        public const int FirstYear = 2000;
        public const int LastYear = 2099;
        public const string RangeText = "is outside the years 2000 to 2099 that Nurture accepts.";

        /// <summary>A date-time with an offset (Z or ±hh:mm), years 2000–2099.</summary>
        public const string DateTimePattern = "^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";
        /// <summary>A date "YYYY-MM-DD", years 2000–2099.</summary>
        public const string DatePattern = "^20[0-9]{2}-[0-9]{2}-[0-9]{2}$";
        public const string UuidPattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
        /// <summary>A bare address: one '@', no spaces, controls, angle brackets or other display-name characters.</summary>
        public const string EmailPattern = "^[^\\u0000-\\u0020\\u007F-\\u009F<>()\\[\\],;:\\\\\"@]+@[^\\u0000-\\u0020\\u007F-\\u009F<>()\\[\\],;:\\\\\"@]+$";
        public const string CurrencyPattern = "^[A-Z]{3}$";
    }

    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    [GeneratedRegex(Limits.EmailPattern)]
    private static partial Regex EmailRegex();

    [GeneratedRegex(Limits.CurrencyPattern)]
    private static partial Regex CurrencyRegex();

    [GeneratedRegex(Limits.DateTimePattern)]
    private static partial Regex DateTimeRegex();

    [GeneratedRegex(Limits.DatePattern)]
    private static partial Regex DateRegex();

    [GeneratedRegex(Limits.UuidPattern)]
    private static partial Regex UuidRegex();

    /// <summary>Any date-time with a time zone offset, whatever the year: tells "out of range" from "no offset".</summary>
    [GeneratedRegex("^[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$")]
    private static partial Regex AnyYearDateTimeRegex();

    private static bool OutOfRange(DateTimeOffset at) => at.Year is < Limits.FirstYear or > Limits.LastYear;

    private static bool OutOfRange(DateOnly day) => day.Year is < Limits.FirstYear or > Limits.LastYear;

    /// <summary>The first field named twice, at any depth: with duplicates, which one counts would depend on the reader.</summary>
    private static string? Duplicate(JsonElement element, string path)
    {
        // Every event is read through here: a field's path is spelled out only for a container or an error.
        if (element.ValueKind == JsonValueKind.Object)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in element.EnumerateObject())
            {
                if (!names.Add(p.Name)) return $"{Truncate(At(path, p.Name))}: appears more than once; send every field once.";
                if (p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array && Duplicate(p.Value, At(path, p.Name)) is { } inner) return inner;
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                if (item.ValueKind is JsonValueKind.Object or JsonValueKind.Array && Duplicate(item, $"{path}[{i}]") is { } inner) return inner;
                i++;
            }
        }
        return null;
    }

    private static string At(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    private sealed record Field(string Name, Type Type, bool Required);

    private static readonly ConcurrentDictionary<Type, Field[]> Fields = new();

    /// <summary>An enum's names as events spell them, and their list for an error: made once a type, not at every event (parsing the sample: 5.2 µs an event against 5.6).</summary>
    private static readonly ConcurrentDictionary<Type, (FrozenSet<string> Names, string List)> EnumNames = new();

    private static Field[] FieldsOf(Type type) => Fields.GetOrAdd(type, t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanWrite && p.GetCustomAttribute<JsonIgnoreAttribute>() is null && p.Name != "EqualityContract")
        .OrderBy(p => Depth(p.DeclaringType!)).ThenBy(p => p.MetadataToken)
        .Select(p => new Field(JsonNamingPolicy.CamelCase.ConvertName(p.Name), p.PropertyType, p.GetCustomAttribute<RequiredMemberAttribute>() is not null))
        .ToArray());

    // The shared fields (eventId, occurredAt, leadId) are checked before the event's own, as docs/events.md lists them.
    private static int Depth(Type type) => type.BaseType is { } b ? 1 + Depth(b) : 0;

    /// <summary>Every known field has the JSON type the docs give it, and every required one is there (null counts as absent).</summary>
    private static string? Shape(JsonElement obj, Field[] fields, string path)
    {
        var missing = new List<string>();
        foreach (var field in fields)
        {
            var name = path + field.Name;
            if (!obj.TryGetProperty(field.Name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                if (field.Required) missing.Add(name);
                continue;
            }
            if (Value(value, field.Type, name) is { } problem) return problem;
        }
        return missing.Count > 0 ? $"{string.Join(", ", missing)}: required but missing." : null;
    }

    private static string? Value(JsonElement v, Type type, string name)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum)
        {
            var (names, list) = EnumNames.GetOrAdd(type, t =>
            {
                var camel = Enum.GetNames(t).Select(n => JsonNamingPolicy.CamelCase.ConvertName(n)).ToArray();
                return (camel.ToFrozenSet(StringComparer.Ordinal), string.Join(", ", camel));
            });
            if (v.ValueKind != JsonValueKind.String) return $"{name}: must be a string, one of {list}.";
            var s = v.GetString()!;
            return names.Contains(s) ? null : $"{name}: '{Truncate(s)}' is not one of {list} (spelled exactly so).";
        }
        if (type == typeof(string)) return v.ValueKind != JsonValueKind.String ? $"{name}: must be a string." : Nul(v.GetString()!, name);
        if (type == typeof(bool)) return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? null : $"{name}: must be true or false.";
        if (type == typeof(int))
        {
            return v.ValueKind != JsonValueKind.Number ? $"{name}: must be a JSON number, not {Kind(v)}."
                : v.TryGetInt32(out _) ? null : $"{name}: must be a whole number.";
        }
        if (type == typeof(decimal) || type == typeof(double))
        {
            return v.ValueKind != JsonValueKind.Number ? $"{name}: must be a JSON number, not {Kind(v)}."
                : v.TryGetDecimal(out _) ? null : $"{name}: out of range.";
        }
        if (type == typeof(Guid))
        {
            return v.ValueKind == JsonValueKind.String && UuidRegex().IsMatch(v.GetString()!) ? null
                : $"{name}: must be a UUID string such as \"7d3a8743-ed3c-4b80-bbae-9a6e566d78e7\".";
        }
        if (type == typeof(DateTimeOffset))
        {
            var s = v.ValueKind == JsonValueKind.String ? v.GetString()! : null;
            if (s is null || !AnyYearDateTimeRegex().IsMatch(s))
            {
                return $"{name}: must be an ISO 8601 date-time with offset (Z or +01:00), e.g. \"2026-11-02T09:15:00+01:00\"; without one the time would be read in the server's zone.";
            }
            if (!DateTimeRegex().IsMatch(s)) return $"{name}: {Truncate(s)} {Limits.RangeText}";
            return DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.None, out _) ? null : $"{name}: {Truncate(s)} is not a real date-time.";
        }
        if (type == typeof(DateOnly))
        {
            var s = v.ValueKind == JsonValueKind.String ? v.GetString()! : null;
            if (s is null || !System.Text.RegularExpressions.Regex.IsMatch(s, "^[0-9]{4,}-[0-9]{2}-[0-9]{2}$")) return $"{name}: must be a date \"YYYY-MM-DD\".";
            if (!DateRegex().IsMatch(s)) return $"{name}: {Truncate(s)} {Limits.RangeText}";
            return DateOnly.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _) ? null : $"{name}: {s} is not a real date.";
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>))
        {
            if (v.ValueKind != JsonValueKind.Object) return $"{name}: must be an object.";
            foreach (var p in v.EnumerateObject())
            {
                if (Nul(p.Name, name) is { } nul) return nul;
                if (Value(p.Value, type.GetGenericArguments()[1], $"{name}.{Truncate(p.Name)}") is { } problem) return problem;
            }
            return null;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
        {
            if (v.ValueKind != JsonValueKind.Array) return $"{name}: must be an array.";
            var i = 0;
            foreach (var item in v.EnumerateArray())
            {
                if (Value(item, type.GetGenericArguments()[0], $"{name}[{i++}]") is { } problem) return problem;
            }
            return null;
        }
        if (type.IsClass)
        {
            return v.ValueKind == JsonValueKind.Object ? Shape(v, FieldsOf(type), name + ".") : $"{name}: must be an object.";
        }
        return null;
    }

    /// <summary>No database of the three keeps a NUL in a text alike (PostgreSQL refuses it): it is refused here, by name, on every way in.</summary>
    private static string? Nul(string value, string name) =>
        value.Contains('\0', StringComparison.Ordinal) ? $"{name}: holds a NUL character (\\u0000), which Nurture does not store; remove it." : null;

    private static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.True or JsonValueKind.False => "true/false",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => v.ValueKind.ToString().ToLowerInvariant(),
    };

    private static string? Long(string field, string? value) => Over(value, Limits.LongText) ? $"{field}: longer than {Limits.LongText} characters." : null;

    private static string? FirstOver(params (string Field, string? Value)[] fields) =>
        fields.FirstOrDefault(f => Over(f.Value, Limits.Text)) is { Field: not null } f ? $"{f.Field}: longer than {Limits.Text} characters." : null;

    private static bool Over(string? value, int limit) => value is not null && value.Length > limit;

    private static string Truncate(string value) => value.Length <= 40 ? value : value[..40] + "…";

    /// <summary>What is left for the serializer to refuse (the shape is checked first), said with the field's name.</summary>
    private static string Describe(JsonException e)
    {
        var path = string.IsNullOrEmpty(e.Path) ? "$" : e.Path;
        var field = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path;
        if (e.InnerException is null && e.Path is null && e.LineNumber is not null) return $"$: not valid JSON (line {e.LineNumber + 1}, position {e.BytePositionInLine + 1}).";
        return $"{field}: not readable as documented.";
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            AllowOutOfOrderMetadataProperties = true,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            RespectNullableAnnotations = true,
            PropertyNameCaseInsensitive = false,
            NumberHandling = JsonNumberHandling.Strict,
            AllowDuplicateProperties = false,
            MaxDepth = 16,
            // Readable names (Müller) in NDJSON files; this form is never embedded in HTML.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
