using Dapper;
using Microsoft.Data.SqlClient;
using Npgsql;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Storage;

/// <summary>
/// A fresh, migrated database per test for one provider. SQLite always runs; PostgreSQL runs where
/// NURTURE_TEST_POSTGRES holds a connection string (the README's test command starts a server and sets it);
/// SQL Server where NURTURE_TEST_SQLSERVER does. Otherwise the test is skipped, saying why.
/// </summary>
public static class TestDatabase
{
    public const string PostgresVariable = "NURTURE_TEST_POSTGRES";
    public const string SqlServerVariable = "NURTURE_TEST_SQLSERVER";

    public static Database Create(DatabaseProvider provider, bool migrate = true)
    {
        var name = $"nurture_test_{Guid.NewGuid():N}"[..30];
        var database = provider switch
        {
            DatabaseProvider.Sqlite => new Database(provider, $"Data Source={Path.Combine(Path.GetTempPath(), name + ".db")}"),
            DatabaseProvider.PostgreSql => new Database(provider, new NpgsqlConnectionStringBuilder(Required(PostgresVariable, "PostgreSQL")) { Database = name }.ToString()),
            DatabaseProvider.SqlServer => new Database(provider, new SqlConnectionStringBuilder(Required(SqlServerVariable, "SQL Server")) { InitialCatalog = name }.ToString()),
            _ => throw new ArgumentOutOfRangeException(nameof(provider)),
        };
        if (migrate) database.Migrate();
        return database;
    }

    private static string Required(string variable, string what)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        Skip.If(string.IsNullOrWhiteSpace(value), $"{what} tests need {variable} to hold a connection string; it is not set here.");
        return value!;
    }

    /// <summary>For tests that count rows directly.</summary>
    public static async Task<long> CountAsync(this Database database, string sql, object? parameters = null)
    {
        await using var connection = await database.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(sql, parameters);
    }
}
