using System.Data.Common;
using Dapper;
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
    private readonly List<(string Sql, List<KeyValuePair<string, object?>> Parameters, List<DynamicParameters>? Rows)> _statements = [];

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
    /// SQLite: one statement, prepared once and run for each row with its values bound to <paramref name="names"/>. SQLite
    /// runs in the process, so a row costs a step and not a round trip, while a multi-row statement is prepared anew each
    /// time and binds each of its parameters by a name it looks up among all of them (most of `ingest`'s time on SQLite).
    /// Returns its index; its rows affected are the sum over the rows.
    /// </summary>
    public int AddPerRow(string sql, IReadOnlyList<string> names, IEnumerable<object?[]> rows)
    {
        _statements.Add((sql, [], rows.Select(values =>
        {
            var row = new DynamicParameters();
            for (var i = 0; i < names.Count; i++) row.Add(names[i], values[i]);
            return row;
        }).ToList()));
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
                // Dapper runs a command given a list of parameter sets once per set, on one prepared statement.
                affected[i] = _statements[i].Rows is { } rows
                    ? await connection.ExecuteAsync(new CommandDefinition(_statements[i].Sql, rows, transaction, cancellationToken: cancel, flags: CommandFlags.NoCache))
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
