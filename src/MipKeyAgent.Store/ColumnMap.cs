namespace MipKeyAgent.Store;

/// <summary>
/// The columns of one table in the order the row codec reads and writes them: column i is result
/// column <c>first + i</c> of every SELECT built from <see cref="List"/> and parameter <c>first + i</c>
/// (named <c>$</c> + column) of every statement built from <see cref="Parameters"/>. The codecs resolve
/// each name to its ordinal once, when their type initializes (<see cref="this[string]"/>), so reading a
/// row costs no name lookup.
/// </summary>
internal sealed class ColumnMap
{
    private readonly string[] _names;

    public ColumnMap(params string[] names)
    {
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
        {
            throw new ArgumentException("a column is listed twice", nameof(names));
        }
        _names = names;
    }

    /// <summary>The columns in codec order.</summary>
    public IReadOnlyList<string> Names => _names;

    public int Count => _names.Length;

    /// <summary>The ordinal of <paramref name="column"/> (type initializers only: a misspelt name fails at once).</summary>
    public int this[string column]
    {
        get
        {
            int ordinal = Array.IndexOf(_names, column);
            return ordinal >= 0 ? ordinal : throw new ArgumentException($"no column {column}", nameof(column));
        }
    }

    /// <summary>A map of <paramref name="first"/> followed by these columns (e.g. the HA's owner column before the shared generation columns).</summary>
    public ColumnMap Prefixed(string first) => new([first, .. _names]);

    /// <summary>The select list: <c>a, b, c</c>, or <c>t.a, t.b, t.c</c> with a table alias.</summary>
    public string List(string? alias = null) => string.Join(", ", alias is null ? _names : _names.Select(n => alias + "." + n));

    /// <summary>The parameter names in column order: <c>$a</c>, <c>$b</c>, ... (<paramref name="marker"/> <c>@</c> for PostgreSQL).</summary>
    public string[] ParameterNames(char marker = '$') => [.. _names.Select(n => marker + n)];

    /// <summary>The VALUES list: <c>$a, $b, $c</c> (or <c>@a, @b, @c</c>).</summary>
    public string Parameters(char marker = '$') => string.Join(", ", ParameterNames(marker));

    /// <summary>The upsert's update list, every column but the conflict key's: <c>b = excluded.b, c = excluded.c</c>.</summary>
    public string UpdateFromExcluded(params string[] key) =>
        string.Join(", ", _names.Where(n => !key.Contains(n, StringComparer.Ordinal)).Select(n => $"{n} = excluded.{n}"));
}
