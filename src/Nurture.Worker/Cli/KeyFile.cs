using System.Security.Cryptography;

namespace Nurture.Worker.Cli;

/// <summary>
/// A secret the embedded default makes once and keeps in a file beside the SQLite database, so it survives restarts.
/// With a database server, several workers on several hosts must share the secret, so it has to be configured.
/// </summary>
public static class KeyFile
{
    public static string ReadOrCreate(string setting, string file, string? dataFolder, Func<string> create)
    {
        if (dataFolder is null)
        {
            throw new SettingsException($"{setting}: required when the database is a server: every worker must use the same secret. Set it in the environment ({setting.Replace(":", "__", StringComparison.Ordinal)}).");
        }
        var path = Path.IsPathRooted(file) ? file : Path.Combine(dataFolder, file);
        if (Path.GetDirectoryName(path) is { } folder) Directory.CreateDirectory(folder);
        try
        {
            using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
            using var writer = new StreamWriter(stream);
            writer.Write(create());
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Made before, or by another worker starting at the same moment.
        }
        for (var attempt = 0; ; attempt++)
        {
            var text = File.ReadAllText(path).Trim();
            if (text.Length > 0) return text;
            if (attempt == 20) throw new SettingsException($"{setting}: the key file '{path}' is empty; delete it to have a new one made, or set {setting}.");
            Thread.Sleep(50);
        }
    }

    public static string NewSecret(int bytes) => Convert.ToBase64String(RandomNumberGenerator.GetBytes(bytes));
}
