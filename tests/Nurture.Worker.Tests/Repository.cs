namespace Nurture.Worker.Tests;

/// <summary>The repository the tests run in: README, samples, appsettings.example.json, deploy/.</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Nurture.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Nurture.sln not found above " + AppContext.BaseDirectory);
    }
}
