using Microsoft.Extensions.Options;

namespace Nurture.Worker.Storage;

/// <summary>Nurture:Rejections: how much of an event Nurture could not take it keeps in rejected_events.</summary>
public sealed class RejectionOptions
{
    public const string Section = "Nurture:Rejections";

    /// <summary>
    /// A rejected payload is kept up to this many bytes (UTF-8); the whole payload's SHA-256 and length are kept beside
    /// it, so one huge bad message cannot fill the database and can still be told apart.
    /// </summary>
    public int MaxPayloadBytes { get; set; } = 16 * 1024;
}

/// <summary>Checks Nurture:Rejections at start-up, naming the setting.</summary>
public sealed class RejectionOptionsCheck : IValidateOptions<RejectionOptions>
{
    public ValidateOptionsResult Validate(string? name, RejectionOptions options) => options.MaxPayloadBytes is < 256 or > 16 * 1024 * 1024
        ? ValidateOptionsResult.Fail($"{RejectionOptions.Section}:MaxPayloadBytes: {options.MaxPayloadBytes} is not a number of bytes from 256 to 16777216.")
        : ValidateOptionsResult.Success;
}
