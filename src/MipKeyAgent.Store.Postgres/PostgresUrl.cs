using System.Globalization;

namespace MipKeyAgent.Store.Postgres;

/// <summary>
/// A store URL, <c>postgresql://USER@HOST:PORT/DATABASE?host=/socket/dir&amp;sslmode=...</c> (libpq's
/// connection URI, https://www.postgresql.org/docs/15/libpq-connect.html section 34.1.1.2), turned into
/// Npgsql's connection settings. The password never comes from the URL (a command line is visible to every
/// user of the machine): it is read from a 0600 file or from PGPASSWORD; a URL that carries one is refused.
/// </summary>
public sealed class PostgresUrl
{
    /// <summary>libpq's default socket directory on Debian, when the URL names no host.</summary>
    public const string DefaultSocketDirectory = "/var/run/postgresql";

    private static readonly string[] Schemes = ["postgresql://", "postgres://"];

    private PostgresUrl(string text, NpgsqlConnectionStringBuilder settings)
    {
        Text = text;
        Settings = settings;
    }

    /// <summary>The URL as given (it holds no password), for messages and status.</summary>
    public string Text { get; }

    internal NpgsqlConnectionStringBuilder Settings { get; }

    /// <summary>True for a URL this store opens (<c>postgresql://</c> or <c>postgres://</c>).</summary>
    public static bool IsPostgres(string store) => Schemes.Any(s => store.StartsWith(s, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Parses <paramref name="url"/>; the password comes from <paramref name="passwordFile"/> (mode 0600, first line) or,
    /// without one, from <paramref name="environmentPassword"/> (PGPASSWORD). Throws <see cref="BindingStoreException"/>
    /// naming what is wrong.
    /// </summary>
    public static PostgresUrl Parse(string url, string? passwordFile = null, string? environmentPassword = null)
    {
        ArgumentNullException.ThrowIfNull(url);
        string? scheme = Schemes.FirstOrDefault(s => url.StartsWith(s, StringComparison.OrdinalIgnoreCase))
            ?? throw new BindingStoreException($"'{url}' is not a postgresql:// URL");
        string rest = url[scheme.Length..];
        string query = "";
        int question = rest.IndexOf('?', StringComparison.Ordinal);
        if (question >= 0)
        {
            query = rest[(question + 1)..];
            rest = rest[..question];
        }
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        string authority = slash >= 0 ? rest[..slash] : rest;
        string database = slash >= 0 ? Unescape(rest[(slash + 1)..]) : "";

        var settings = new NpgsqlConnectionStringBuilder();
        int at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            string user = authority[..at];
            if (user.Contains(':', StringComparison.Ordinal))
            {
                throw new BindingStoreException(
                    "the store URL carries a password: remove it and put the password in a 0600 file (--store-password-file) or in PGPASSWORD");
            }
            settings.Username = Unescape(user);
            authority = authority[(at + 1)..];
        }
        SetHostAndPort(settings, authority, url);
        if (database.Length == 0)
        {
            throw new BindingStoreException($"'{url}' names no database (postgresql://USER@HOST/DATABASE)");
        }
        settings.Database = database;
        foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            SetParameter(settings, pair, url);
        }
        settings.Host ??= DefaultSocketDirectory;
        settings.Password = ReadPassword(passwordFile) ?? (string.IsNullOrEmpty(environmentPassword) ? null : environmentPassword);
        // Statements the store repeats are prepared on each pooled connection after their second use.
        settings.MaxAutoPrepare = 32;
        settings.AutoPrepareMinUsages = 2;
        // The store sets no session state, so a connection back from the pool needs no reset (one statement less per write).
        settings.NoResetOnClose = true;
        return new PostgresUrl(url, settings);
    }

    private static void SetHostAndPort(NpgsqlConnectionStringBuilder settings, string authority, string url)
    {
        if (authority.Length == 0)
        {
            return;
        }
        string host = authority;
        string? port = null;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new BindingStoreException($"'{url}': unterminated [IPv6 address]");
            }
            host = authority[1..close];
            port = authority.Length > close + 2 && authority[close + 1] == ':' ? authority[(close + 2)..] : null;
        }
        else if (authority.LastIndexOf(':') is var colon and >= 0)
        {
            host = authority[..colon];
            port = authority[(colon + 1)..];
        }
        settings.Host = Unescape(host);
        if (port is not null)
        {
            settings.Port = ParsePort(port, url);
        }
    }

    private static void SetParameter(NpgsqlConnectionStringBuilder settings, string pair, string url)
    {
        int equals = pair.IndexOf('=', StringComparison.Ordinal);
        string name = equals >= 0 ? pair[..equals] : pair;
        string value = equals >= 0 ? Unescape(pair[(equals + 1)..]) : "";
        switch (name)
        {
            case "host":
                settings.Host = value;
                break;
            case "port":
                settings.Port = ParsePort(value, url);
                break;
            case "user":
                settings.Username = value;
                break;
            case "dbname":
                settings.Database = value;
                break;
            case "application_name":
                settings.ApplicationName = value;
                break;
            case "connect_timeout":
                settings.Timeout = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) && seconds > 0
                    ? seconds
                    : throw new BindingStoreException($"'{url}': connect_timeout must be a number of seconds");
                break;
            case "sslmode":
                settings.SslMode = Enum.TryParse<SslMode>(value.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var mode)
                    ? mode
                    : throw new BindingStoreException($"'{url}': unknown sslmode '{value}'");
                break;
            case "password":
                throw new BindingStoreException(
                    "the store URL carries a password: remove it and put the password in a 0600 file (--store-password-file) or in PGPASSWORD");
            default:
                throw new BindingStoreException($"'{url}': unknown parameter '{name}' (known: host, port, user, dbname, application_name, connect_timeout, sslmode)");
        }
    }

    private static int ParsePort(string text, string url) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and <= 65535
            ? port
            : throw new BindingStoreException($"'{url}': '{text}' is not a port");

    private static string Unescape(string text) => Uri.UnescapeDataString(text);

    /// <summary>The first line of <paramref name="path"/>, which must be readable by its owner only; null without a file.</summary>
    private static string? ReadPassword(string? path)
    {
        if (path is null)
        {
            return null;
        }
        if (!File.Exists(path))
        {
            throw new BindingStoreException($"store password file '{path}' does not exist");
        }
        FilePermissions.RequireOwnerOnly(path, "store password file");
        string password = File.ReadLines(path).FirstOrDefault() ?? "";
        return password.Length > 0 ? password : throw new BindingStoreException($"store password file '{path}' is empty");
    }
}
