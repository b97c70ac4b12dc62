using MipKeyAgent.Store.Postgres;

namespace MipKeyAgent.Store.Tests;

/// <summary>Store URLs: libpq's form, the socket directory, and a password only from a 0600 file or PGPASSWORD.</summary>
public sealed class PostgresUrlTests : IDisposable
{
    private readonly StoreDirectory _directory = new();

    [Fact]
    public void Parse_SocketUrl_UserDatabaseAndSocketDirectory()
    {
        var url = PostgresUrl.Parse("postgresql://ha@/mipkey?host=%2Frun%2Fpg");

        Assert.Equal("ha", url.Settings.Username);
        Assert.Equal("mipkey", url.Settings.Database);
        Assert.Equal("/run/pg", url.Settings.Host);
        Assert.Null(url.Settings.Password);
    }

    [Fact]
    public void Parse_HostAndPort_IPv6Literal()
    {
        var url = PostgresUrl.Parse("postgres://ha@[2001:db8::5]:6543/mipkey");

        Assert.Equal("2001:db8::5", url.Settings.Host);
        Assert.Equal(6543, url.Settings.Port);
    }

    [Fact]
    public void Parse_NoHost_DebianSocketDirectory()
    {
        Assert.Equal(PostgresUrl.DefaultSocketDirectory, PostgresUrl.Parse("postgresql://ha@/mipkey").Settings.Host);
    }

    [Theory]
    [InlineData("postgresql://ha:secret@/mipkey")]
    [InlineData("postgresql://ha@/mipkey?password=secret")]
    public void Parse_PasswordInUrl_RefusedPointingAtTheFileOrEnvironment(string text)
    {
        var error = Assert.Throws<BindingStoreException>(() => PostgresUrl.Parse(text));

        Assert.Contains("carries a password", error.Message, StringComparison.Ordinal);
        Assert.Contains("PGPASSWORD", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sqlite:///x.db", "not a postgresql:// URL")]
    [InlineData("postgresql://ha@/", "names no database")]
    [InlineData("postgresql://ha@/db?colour=red", "unknown parameter 'colour'")]
    [InlineData("postgresql://ha@h:99999/db", "is not a port")]
    public void Parse_Malformed_ClearError(string text, string expected)
    {
        Assert.Contains(expected, Assert.Throws<BindingStoreException>(() => PostgresUrl.Parse(text)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_PasswordFileOwnerOnly_FirstLineIsThePassword()
    {
        string file = Path.Combine(_directory.Path, "pg.pass");
        File.WriteAllText(file, "s3cret\nignored\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        Assert.Equal("s3cret", PostgresUrl.Parse("postgresql://ha@/db", file, environmentPassword: "other").Settings.Password);
    }

    [Fact]
    public void Parse_PasswordFileReadableByGroup_RefusedNamingIt()
    {
        string file = Path.Combine(_directory.Path, "pg.pass");
        File.WriteAllText(file, "s3cret\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);

        var error = Assert.Throws<BindingStoreException>(() => PostgresUrl.Parse("postgresql://ha@/db", file));

        Assert.Contains(file, error.Message, StringComparison.Ordinal);
        Assert.Contains("chmod 600", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NoFile_EnvironmentPasswordUsed()
    {
        Assert.Equal("fromenv", PostgresUrl.Parse("postgresql://ha@/db", null, "fromenv").Settings.Password);
    }

    public void Dispose() => _directory.Dispose();
}
