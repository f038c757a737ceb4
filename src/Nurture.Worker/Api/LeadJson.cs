using System.Text.Json;
using System.Text.Json.Serialization;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Api;

/// <summary>
/// The one JSON shape for leads, transitions, the funnel and value, written by the same code for `replay`, `ingest`,
/// `report` and the API: camelCase names, enum values as in the events ("mql"), a transition as from/to/skipped (a list).
/// </summary>
public static class LeadJson
{
    public static JsonSerializerOptions Options { get; } = Create(indented: false);

    /// <summary>The same, indented, for the commands' output.</summary>
    public static JsonSerializerOptions Indented { get; } = Create(indented: true);

    public sealed record Transition(LeadStage From, LeadStage To, DateTimeOffset At, string Reason, IReadOnlyList<LeadStage> Skipped, string? DefinitionVersion);

    public static Transition Of(StageTransition t) => new(t.From, t.To, t.At, t.Reason, t.Skipped, t.DefinitionVersion);

    public static Transition Of(LeadTransitionRow r) => new(
        Enum.Parse<LeadStage>(r.FromStage), Enum.Parse<LeadStage>(r.ToStage), r.At, r.Reason,
        (r.Skipped ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Enum.Parse<LeadStage>).ToList(),
        r.DefinitionVersion);

    /// <summary>A lead's outcome as `replay` prints it, its transitions in the shape above.</summary>
    public static object Of(LeadOutcome lead) => new
    {
        lead.LeadId, lead.Stage, lead.Source, lead.Score, lead.Explanation,
        Transitions = lead.Transitions.Select(Of).ToList(),
    };

    private static JsonSerializerOptions Create(bool indented)
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = indented };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
