using MipKeyAgent.Cli.Commands;

namespace MipKeyAgent.Cli.Tests;

/// <summary><c>mipkey server</c> and <c>mipkey client</c>: a mistake on the command line is one line naming the option, exit 2.</summary>
public sealed class CarriageCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-cli-carriage-").FullName;

    private string Private(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    [Theory]
    [InlineData("client", "--server", "nope", "mipkey: --server: 'nope' is not an IP address")]
    [InlineData("client", "--port", "70000", "mipkey: --port: 70000 is not a UDP port (1-65535)")]
    [InlineData("server", "--listen", "192.0.2.300", "mipkey: --listen: '192.0.2.300' is not an IP address")]
    [InlineData("server", "--port", "0", "mipkey: --port: 0 is not a UDP port (1-65535)")]
    public async Task BadAddressOrPort_CarriageVerbs_OneLineExit2(string verb, string option, string value, string expected)
    {
        var config = verb == "client" ? Private("mn1.conf", ConfigText.MobileNode) : Private("ha.conf", ConfigText.HomeAgent);
        string[] args = verb == "client"
            ? ["client", "-c", config, "--volatile", .. option == "--server" ? [] : new[] { "--server", "192.0.2.1" }, option, value]
            : ["server", "-c", config, "--volatile", option, value];
        var error = new StringWriter();

        int code = await CliApp.RunAsync(args, error);

        Assert.Equal(2, code);
        Assert.Equal(expected, error.ToString().Trim());
        Assert.Equal(verb == "client" ? ["mn1.conf"] : ["ha.conf"], Directory.EnumerateFileSystemEntries(_directory).Select(Path.GetFileName));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
