using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Nurture.Worker.Storage;

/// <summary>
/// Statements that go to the database together: in one round trip on PostgreSQL (an Npgsql batch), one after the other
/// elsewhere (SQLite runs in the process; SQL Server keeps the statements it had). Parameters are named in the SQL
/// (@p0, @ids…) and given as values; lists are arrays on PostgreSQL and expanded by Dapper elsewhere. Without a
/// transaction, an Npgsql batch runs as one implicit transaction.
/// </summary>
internal sealed class RoundTrip(DbConnection connection, DbTransaction? transaction, CancellationToken cancel)
{
    /// <summary>Each statement with its parameters, or, for one run once per row (<see cref="AddPerRow"/>), each row's.</summary>
    private readonly List<(string Sql, List<KeyValuePair<string, object?>> Parameters, PerRow? Rows)> _statements = [];

    /// <summary>A statement's parameter names and each row's values in that order.</summary>
    private sealed record PerRow(IReadOnlyList<string> Names, List<object?[]> Values);

    /// <summary>True where the statements travel together (an Npgsql batch).</summary>
    private bool Together => connection is NpgsqlConnection;

    public int Count => _statements.Count;

    /// <summary>Adds a statement; returns its index, for its rows affected or its result.</summary>
    public int Add(string sql, List<KeyValuePair<string, object?>> parameters)
    {
        _statements.Add((sql, parameters, null));
        return _statements.Count - 1;
    }

    public int Add(string sql, string name, object? value) => Add(sql, [new(name, value)]);

    /// <summary>
    /// SQLite: one statement, prepared once and run for each row with its values bound to @<paramref name="names"/>. SQLite
    /// runs in the process, so a row costs a step and not a round trip, while a multi-row statement is prepared anew each
    /// time and binds each of its parameters by a name it looks up among all of them (most of `ingest`'s time on SQLite).
    /// Returns its index; its rows affected are the sum over the rows.
    /// </summary>
    public int AddPerRow(string sql, IReadOnlyList<string> names, IEnumerable<object?[]> rows)
    {
        if (connection is not SqliteConnection) throw new InvalidOperationException("Statements run once per row are for SQLite.");
        _statements.Add((sql, [], new PerRow(names, rows.ToList())));
        return _statements.Count - 1;
    }

    /// <summary>Runs them all; returns the rows each affected.</summary>
    public async Task<int[]> ExecuteAsync()
    {
        var affected = new int[_statements.Count];
        if (_statements.Count == 0) return affected;
        if (Together)
        {
            await using var batch = Batch();
            await batch.ExecuteNonQueryAsync(cancel);
            for (var i = 0; i < affected.Length; i++) affected[i] = batch.BatchCommands[i].RecordsAffected;
        }
        else
        {
            for (var i = 0; i < affected.Length; i++)
            {
                affected[i] = _statements[i].Rows is { } rows
                    ? RunPerRow(_statements[i].Sql, rows)
                    : await connection.ExecuteAsync(Definition(i));
            }
        }
        _statements.Clear();
        return affected;
    }

    /// <summary>
    /// Runs them all and hands each statement's rows to <paramref name="read"/> with the statement's index. Every
    /// statement must end in a SELECT (or RETURNING): Npgsql gives a batch's statements without one no result at all,
    /// which would move every later index.
    /// </summary>
    public async Task ReadAsync(Action<int, DbDataReader> read)
    {
        if (_statements.Count == 0) return;
        if (Together)
        {
            await using var batch = Batch();
            await using var reader = await batch.ExecuteReaderAsync(cancel);
            var i = 0;
            do
            {
                // One result per statement that returns rows, even none of them.
                while (await reader.ReadAsync(cancel)) read(i, reader);
                i++;
            }
            while (await reader.NextResultAsync(cancel));
            if (i != _statements.Count) throw new InvalidOperationException($"{_statements.Count} statements brought {i} results: each must end in a SELECT.");
        }
        else
        {
            for (var i = 0; i < _statements.Count; i++)
            {
                await using var reader = await connection.ExecuteReaderAsync(Definition(i));
                while (await reader.ReadAsync(cancel)) read(i, reader);
            }
        }
        _statements.Clear();
    }

    /// <summary>
    /// One SqliteCommand, prepared once, its parameters made once with the prefix the SQL uses and only their values set
    /// for each row: Dapper makes the parameters anew for each row, unprefixed, and Microsoft.Data.Sqlite then looks each
    /// one up under every prefix it knows (a CPU profile of `ingest` put a fifth of it there). The values are written as
    /// the Dapper type handlers write them (<see cref="DateTimeOffsetHandler"/>, <see cref="GuidHandler"/>).
    /// </summary>
    private int RunPerRow(string sql, PerRow rows)
    {
        using var command = ((SqliteConnection)connection).CreateCommand();
        command.CommandText = sql;
        command.Transaction = (SqliteTransaction?)transaction;
        var parameters = rows.Names.Select(name => command.Parameters.Add(new SqliteParameter("@" + name, null))).ToArray();
        command.Prepare();
        var affected = 0;
        foreach (var values in rows.Values)
        {
            cancel.ThrowIfCancellationRequested();
            for (var i = 0; i < parameters.Length; i++)
            {
                parameters[i].Value = values[i] switch
                {
                    null => DBNull.Value,
                    DateTimeOffset time => DateTimeOffsetHandler.SqliteText(time),
                    Guid id => GuidHandler.SqliteText(id),
                    var value => value,
                };
            }
            affected += command.ExecuteNonQuery();
        }
        return affected;
    }

    private DbBatch Batch()
    {
        var batch = connection.CreateBatch();
        batch.Transaction = transaction;
        foreach (var (sql, parameters, _) in _statements)
        {
            var command = batch.CreateBatchCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.Add(new NpgsqlParameter(name, value switch
                {
                    null => DBNull.Value,
                    // timestamptz takes UTC only.
                    DateTimeOffset time => time.ToUniversalTime(),
                    _ => value,
                }));
            }
            batch.BatchCommands.Add(command);
        }
        return batch;
    }

    private CommandDefinition Definition(int i)
    {
        var (sql, parameters, _) = _statements[i];
        var dapper = new DynamicParameters();
        foreach (var (name, value) in parameters) dapper.Add(name, value);
        return new CommandDefinition(sql, dapper, transaction, cancellationToken: cancel, flags: CommandFlags.NoCache);
    }
}
