using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.SqlServer.TransactSql.ScriptDom;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Tests.Storage;

/// <summary>
/// SQL Server cannot run here, so every T-SQL statement Nurture sends is at least parsed by Microsoft's own parser:
/// the migration scripts, the SQL Server dialect and the statements all providers share.
/// </summary>
public partial class When_SQL_Server_is_not_at_hand
{
    public static TheoryData<string, string> Statements()
    {
        var data = new TheoryData<string, string>();
        var assembly = typeof(LeadStore).Assembly;
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.Contains(".Scripts.SqlServer.", StringComparison.Ordinal)))
        {
            using var reader = new StreamReader(assembly.GetManifestResourceStream(resource)!);
            data.Add(resource, reader.ReadToEnd());
        }
        var dialect = SqlDialect.For(DatabaseProvider.SqlServer);
        foreach (var property in typeof(SqlDialect).GetProperties().Where(p => p.PropertyType == typeof(string)))
        {
            // A statement only some providers need (LockLeads) is null for the others.
            if (property.GetValue(dialect) is string sql) data.Add($"SqlDialect.{property.Name}", sql);
        }
        // The multi-row statements a batch writes, as SQL Server gets them.
        data.Add("SqlDialect.InsertRows", dialect.InsertRows("outbox", ["message_id", "type", "payload", "created_at"], ["(@p0, @p1, @p2, @p3)", "(@p4, @p5, @p6, @p7)"]));
        data.Add("SqlDialect.InsertRows (if new)", dialect.InsertRows("outbox", ["message_id", "type", "payload", "created_at"], ["(@p0, @p1, @p2, @p3)", "(@p4, @p5, @p6, @p7)"], ["message_id"]));
        foreach (var type in new[] { typeof(StoreSql), typeof(NurtureSql), typeof(ReportSql), typeof(ExperimentSql), typeof(Nurture.Worker.Webhooks.WebhookSql), typeof(Nurture.Worker.Webhooks.WebhookSqlServerSql), typeof(ErasureSql) })
        {
            // Constants, and statements built once from the domain's lists (static readonly).
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.FieldType == typeof(string) && (f.IsLiteral || f.IsInitOnly)))
            {
                data.Add($"{type.Name}.{field.Name}", (string)(field.IsLiteral ? field.GetRawConstantValue() : field.GetValue(null))!);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Statements))]
    public void Should_parse_as_T_SQL(string name, string sql)
    {
        // Dapper expands "IN @list" into "IN (@list1, @list2)" before SQL Server sees it.
        var expanded = DapperList().Replace(sql, "IN (@$1)");
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);

        using var reader = new StringReader(expanded);
        parser.Parse(reader, out var errors);

        Assert.True(errors.Count == 0, $"{name}: " + string.Join("; ", errors.Select(e => $"line {e.Line}: {e.Message}")));
    }

    [Fact]
    public void Should_find_a_syntax_error_when_there_is_one()
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        using var reader = new StringReader("SELECT TOP 5 id FROM outbox LIMIT 5");

        parser.Parse(reader, out var errors);

        Assert.NotEmpty(errors);
    }

    [GeneratedRegex(@"IN @(\w+)")]
    private static partial Regex DapperList();
}
