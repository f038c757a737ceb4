using System.Data.Common;
using System.Reflection;
using Dapper;
using DbUp;
using DbUp.Engine;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Nurture.Worker.Storage;

public enum DatabaseProvider
{
    Sqlite,
    PostgreSql,
    SqlServer,
}

/// <summary>Settings under Nurture:Database (the connection string is ConnectionStrings:Nurture).</summary>
public sealed class DatabaseOptions
{
    public const string Section = "Nurture:Database";
    public const string DefaultSqlite = "Data Source=nurture.db";

    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Sqlite;
}

/// <summary>One database: opens connections for its provider and migrates its schema with DbUp.</summary>
public sealed class Database
{
    static Database()
    {
        DefaultTypeMap.MatchNamesWithUnderscores = true;
        SqlMapper.RemoveTypeMap(typeof(DateTimeOffset));
        SqlMapper.RemoveTypeMap(typeof(Guid));
        SqlMapper.AddTypeHandler(new DateTimeOffsetHandler());
        SqlMapper.AddTypeHandler(new GuidHandler());
    }

    public Database(DatabaseProvider provider, string connectionString)
    {
        Provider = provider;
        // Parsing here makes a malformed connection string fail at start-up, not at the first event.
        ConnectionString = provider switch
        {
            DatabaseProvider.Sqlite => WithSqliteDefaults(connectionString),
            DatabaseProvider.PostgreSql => WithPostgresDefaults(connectionString),
            _ => new SqlConnectionStringBuilder(connectionString).ConnectionString,
        };
        Dialect = SqlDialect.For(provider);
    }

    public DatabaseProvider Provider { get; }
    public string ConnectionString { get; }
    public SqlDialect Dialect { get; }

    /// <summary>The SQLite file's folder (where the worker keeps its generated keys), or null for a database server.</summary>
    public string? DataFolder => Provider == DatabaseProvider.Sqlite
        ? Path.GetDirectoryName(Path.GetFullPath(new SqliteConnectionStringBuilder(ConnectionString).DataSource))
        : null;

    /// <summary>Where the data is, for start-up messages: the SQLite file's full path, or the server and database; never a password.</summary>
    public string Describe() => Provider switch
    {
        DatabaseProvider.Sqlite => $"SQLite {Path.GetFullPath(new SqliteConnectionStringBuilder(ConnectionString).DataSource)}",
        DatabaseProvider.PostgreSql => new NpgsqlConnectionStringBuilder(ConnectionString) is var b ? $"PostgreSQL {b.Host}:{b.Port}/{b.Database}" : "",
        _ => new SqlConnectionStringBuilder(ConnectionString) is var s ? $"SQL Server {s.DataSource}/{s.InitialCatalog}" : "",
    };

    public async Task<DbConnection> OpenAsync(CancellationToken cancel = default)
    {
        DbConnection connection = Provider switch
        {
            DatabaseProvider.Sqlite => new SqliteConnection(ConnectionString),
            DatabaseProvider.PostgreSql => new NpgsqlConnection(ConnectionString),
            DatabaseProvider.SqlServer => new SqlConnection(ConnectionString),
            _ => throw new InvalidOperationException($"Unknown provider {Provider}."),
        };
        await connection.OpenAsync(cancel);
        if (Provider == DatabaseProvider.Sqlite)
        {
            // WAL lets readers work while one writer commits; the busy timeout makes writers queue instead of failing.
            // A 16 MiB page cache (2 MiB by default) and a checkpoint every 8,000 WAL pages (1,000) instead of every
            // batch or so: `ingest` on SQLite spent a fifth of its time in the kernel reading pages back and writing them twice.
            await connection.ExecuteAsync("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=8000;");
        }
        return connection;
    }

    /// <summary>How long one migration script may run.</summary>
    public static readonly TimeSpan MigrationTimeout = TimeSpan.FromHours(1);

    /// <summary>Applies the provider's scripts that have not run yet (Storage/Scripts/{Provider}); returns their names.</summary>
    public IReadOnlyList<string> Migrate(Func<string, bool>? onlyScripts = null, Action<string>? log = null)
    {
        var folder = $".Storage.Scripts.{Provider}.";
        bool Pick(string name) => name.Contains(folder, StringComparison.Ordinal) && (onlyScripts?.Invoke(name) ?? true);
        var builder = Provider switch
        {
            DatabaseProvider.Sqlite => DeployChanges.To.SqliteDatabase(ConnectionString),
            DatabaseProvider.PostgreSql => EnsureThen(() => EnsureDatabase.For.PostgresqlDatabase(ConnectionString, new DbUpLog(log)), DeployChanges.To.PostgresqlDatabase(ConnectionString)),
            DatabaseProvider.SqlServer => EnsureThen(() => EnsureDatabase.For.SqlDatabase(ConnectionString, new DbUpLog(log)), DeployChanges.To.SqlDatabase(ConnectionString)),
            _ => throw new InvalidOperationException($"Unknown provider {Provider}."),
        };
        var upgrade = builder
            .WithScriptsEmbeddedInAssembly(Assembly.GetExecutingAssembly(), Pick)
            .WithTransactionPerScript()
            // A script that fills a new table from a long history runs for minutes (0017: 10 s a 3 million events on
            // PostgreSQL); the providers' 30 s would fail the start, and again at every start after it.
            .WithExecutionTimeout(MigrationTimeout)
            .LogTo(new DbUpLog(log))
            .Build();
        var result = upgrade.PerformUpgrade();
        if (!result.Successful)
        {
            throw new InvalidOperationException($"Migrating the {Provider} database failed in {result.ErrorScript?.Name ?? "a script"}: {result.Error?.Message}", result.Error);
        }
        return result.Scripts.Select(s => ShortName(s.Name)).ToList();
    }

    /// <summary>The scripts this build carries for the provider, in order.</summary>
    public IReadOnlyList<string> Scripts() =>
        Assembly.GetExecutingAssembly().GetManifestResourceNames()
            .Where(n => n.Contains($".Storage.Scripts.{Provider}.", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).Select(ShortName).ToList();

    private static string ShortName(string resource) => resource[(resource.LastIndexOf(".Scripts.", StringComparison.Ordinal) + 9)..];

    private static T EnsureThen<T>(Action ensure, T then)
    {
        ensure();
        return then;
    }

    private static string WithSqliteDefaults(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString) { Pooling = true, DefaultTimeout = 30 };
        return builder.ToString();
    }

    /// <summary>
    /// Npgsql prepares the statements a connection runs often (unless the connection string sets Max Auto Prepare,
    /// e.g. to 0 behind a pooler without prepared statements): the same few statements run for every event and email, and
    /// planning them each time cost PostgreSQL more CPU than running them.
    /// A pooled connection is not reset when it goes back (unless the connection string sets No Reset On Close): Nurture
    /// leaves no session state behind (its settings and advisory locks are the transaction's), and the seven statements
    /// of a reset cost PostgreSQL 30 µs of CPU at each open, one open for almost every email sent.
    /// </summary>
    private static string WithPostgresDefaults(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var given = new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Select(k => k.Replace(" ", "", StringComparison.Ordinal)).ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (!given.Contains("MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 100;
            builder.AutoPrepareMinUsages = 2;
        }
        if (!given.Contains("NoResetOnClose")) builder.NoResetOnClose = true;
        return builder.ConnectionString;
    }

    private sealed class DbUpLog(Action<string>? log) : DbUp.Engine.Output.IUpgradeLog
    {
        public void LogTrace(string format, params object[] args) { }
        public void LogDebug(string format, params object[] args) { }
        public void LogInformation(string format, params object[] args) => log?.Invoke(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
        public void LogWarning(string format, params object[] args) => log?.Invoke(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
        public void LogError(string format, params object[] args) => log?.Invoke(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
        public void LogError(Exception ex, string format, params object[] args) => log?.Invoke(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args) + ": " + ex.Message);
    }
}

/// <summary>Times are stored in UTC: as fixed-width ISO 8601 text on SQLite (so text order is time order), natively elsewhere.</summary>
internal sealed class DateTimeOffsetHandler : SqlMapper.TypeHandler<DateTimeOffset>
{
    public const string SqliteFormat = "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'";

    public override void SetValue(System.Data.IDbDataParameter parameter, DateTimeOffset value)
    {
        parameter.Value = parameter is SqliteParameter ? SqliteText(value) : value.ToUniversalTime();
    }

    public static string SqliteText(DateTimeOffset value) => value.UtcDateTime.ToString(SqliteFormat, System.Globalization.CultureInfo.InvariantCulture);

    public override DateTimeOffset Parse(object value) => value switch
    {
        DateTimeOffset d => d,
        DateTime d => new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc)),
        string s => DateTimeOffset.Parse(s, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal),
        _ => throw new InvalidCastException($"Cannot read a time from {value.GetType().Name}."),
    };
}

/// <summary>Ids are text on SQLite and native uuid / uniqueidentifier elsewhere.</summary>
internal sealed class GuidHandler : SqlMapper.TypeHandler<Guid>
{
    public override void SetValue(System.Data.IDbDataParameter parameter, Guid value) =>
        parameter.Value = parameter is SqliteParameter ? SqliteText(value) : value;

    public static string SqliteText(Guid value) => value.ToString("D");

    public override Guid Parse(object value) => value switch
    {
        Guid g => g,
        string s => Guid.Parse(s),
        byte[] b => new Guid(b),
        _ => throw new InvalidCastException($"Cannot read an id from {value.GetType().Name}."),
    };
}
