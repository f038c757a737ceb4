using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;
using Nurture.Worker.Cli;

namespace Nurture.Worker.Api;

/// <summary>Nurture:Api: the key clients send in X-Api-Key, and the limits of one request.</summary>
public sealed record ApiSettings
{
    public const string Section = "Nurture:Api";

    public string Key { get; init; } = "";
    /// <summary>True when no key was configured and one was generated into <see cref="KeyFile"/>.</summary>
    public bool KeyGenerated { get; init; }
    public string KeyFile { get; init; } = "nurture-api.key";
    public int MaxBodyBytes { get; init; } = 4 * 1024 * 1024;
    public int MaxEvents { get; init; } = 10_000;

    public static ApiSettings Load(IConfiguration configuration, string? dataFolder)
    {
        var s = configuration.GetSection(Section);
        var file = s["KeyFile"] is { Length: > 0 } f ? f : "nurture-api.key";
        var key = s["Key"];
        var generated = false;
        if (string.IsNullOrEmpty(key))
        {
            // No key configured: (SQLite) one is made once and kept in a file beside the database, so clients can read it.
            key = Cli.KeyFile.ReadOrCreate($"{Section}:Key", file, dataFolder, () => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)));
            if (dataFolder is not null && !Path.IsPathRooted(file)) file = Path.Combine(dataFolder, file);
            generated = true;
        }
        else if (key.Length < 16)
        {
            throw new SettingsException($"{Section}:Key: {key.Length} characters is too short for an API key; use at least 16 random characters.");
        }
        return new ApiSettings
        {
            Key = key,
            KeyGenerated = generated,
            KeyFile = file,
            MaxBodyBytes = s.WholeNumber("MaxBodyBytes", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
            MaxEvents = s.WholeNumber("MaxEvents", 10_000, 1, 1_000_000),
        };
    }

    /// <summary>Compares in constant time, so the key cannot be guessed a character at a time.</summary>
    public bool Accepts(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(Key));
}
