using System.CommandLine;

namespace Nurture.Worker.Cli;

/// <summary>
/// A typo must not start the worker: besides a command's own options, the command line holds only settings
/// (--Section:Key=value). Anything else is a mistake, answered with the nearest verb or option it was probably meant to be.
/// </summary>
public static class StrictCommandLine
{
    /// <summary>The settings among the tokens the parser did not match, or the message for the first token that is neither.</summary>
    public static (List<string> Settings, string? Mistake) Check(ParseResult parse, RootCommand root)
    {
        var command = parse.CommandResult.Command;
        var (settings, unknown) = Settings.SplitCommandLine(parse.UnmatchedTokens);
        // A mistyped option where a command takes a file would be read as the file's name: it is a mistake too.
        unknown.InsertRange(0, parse.CommandResult.Children.OfType<System.CommandLine.Parsing.ArgumentResult>()
            .SelectMany(a => a.Tokens).Select(t => t.Value).Where(v => v.StartsWith("--", StringComparison.Ordinal)));
        if (unknown.Count == 0) return (settings, null);

        var token = unknown[0];
        var name = command == root ? "nurture" : command.Name;
        var help = command == root ? "`--help`" : $"`{command.Name} --help`";
        var options = command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(a => a.StartsWith("--", StringComparison.Ordinal)).ToList();
        if (token.StartsWith('-'))
        {
            var meant = Closest(token, options);
            return (settings, $"{name}: unknown option '{token}'{(meant is null ? "" : $"; did you mean {meant}?")} Settings are given as --Section:Key=value. See {help}.");
        }
        if (command == root || command.Name == "run")
        {
            // A word where a verb goes: say which verb it is closest to, and what the verbs are.
            var verbs = root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
            var meant = Closest(token, verbs, always: true);
            return (settings, $"nurture: unknown command '{token}'; did you mean {meant}? The commands: {string.Join(", ", verbs)}. With no command (or `run`) the worker runs. See `--help`.");
        }
        return (settings, $"{name}: unexpected argument '{token}'. See {help}.");
    }

    /// <summary>The candidate nearest to <paramref name="typed"/> (edits, a swap of neighbours counting as one); null when none is near, unless <paramref name="always"/>.</summary>
    public static string? Closest(string typed, IReadOnlyList<string> candidates, bool always = false)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var distance = Distance(typed.ToLowerInvariant(), candidate.ToLowerInvariant());
            if (distance < bestDistance) (best, bestDistance) = (candidate, distance);
        }
        return always || bestDistance <= Math.Max(2, typed.Length / 3) ? best : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and transpositions of neighbours.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }
}
