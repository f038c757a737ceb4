using Microsoft.Extensions.Options;

namespace Nurture.Worker.Leads;

/// <summary>How lead events are taken in: as they happen, or as history moved in from another tool.</summary>
public enum EventMode
{
    /// <summary>Decided, nurtured and published as they come.</summary>
    Live,
    /// <summary>Decided and recorded only: no nurture step is planned and nothing is published about the past.</summary>
    History,
}

/// <summary>Nurture:Import: what Nurture does with events about the past.</summary>
public sealed class ImportOptions
{
    public const string Section = "Nurture:Import";

    /// <summary>
    /// A first nurture step already this many hours overdue when it is planned (a lead captured long ago, imported or
    /// delivered late) is recorded as skipped, "stale on import", and never sent.
    /// </summary>
    public int GraceHours { get; set; } = 48;
}

/// <summary>Checks Nurture:Import at start-up, naming the setting.</summary>
public sealed class ImportOptionsCheck : IValidateOptions<ImportOptions>
{
    public ValidateOptionsResult Validate(string? name, ImportOptions options) => options.GraceHours is < 0 or > 87_600
        ? ValidateOptionsResult.Fail($"{ImportOptions.Section}:GraceHours: {options.GraceHours} is not a number of hours from 0 to 87600.")
        : ValidateOptionsResult.Success;
}
