using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Tools.Fuzzing;
using MipKeyAgent.Wire;
using Xunit.Abstractions;

namespace MipKeyAgent.Cli.Tests.CrashSafety;

/// <summary>
/// A real <c>mipkey mn</c> process (SQLite store, its master key and rollback anchor beside it,
/// <c>--transport unix</c>) that rekeys every 200 ms and pings every 50 ms against a home agent
/// engine in this process; every datagram passes through here, which counts each (SPI, ESP
/// sequence number) the node sends twice across its incarnations. Shared by the SIGKILL test
/// (<c>MobileNodeCrashTests</c>) and the power-loss test of <c>MipKeyAgent.Lab.Tests</c>
/// (<c>MobileNodePowerLossTests</c>, this file is compiled into both), which differ only in what
/// happens to the store between <see cref="KillNode"/> and the next <see cref="StartNode"/>.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class MobileNodeCrashLab : IDisposable
{
    public static readonly string InitializationKeyHex = Convert.ToHexStringLower(SHA256.HashData("mn-crash-test-ik"u8));
    private static readonly Ipv6Address HomeAgentAddress = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:2::1");

    private readonly ITestOutputHelper _output;
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-mn-crash-").FullName;
    private readonly string _storePath;
    private readonly string _labSocket;
    private readonly StringBuilder _logs = new();
    private readonly Lock _logLock = new();
    private readonly HashSet<(uint Spi, uint Sequence)> _sent = [];
    private readonly byte[] _buffer = new byte[65_535 + 40];
    private readonly byte[] _inner = new byte[65_535 + 40];
    private readonly Socket _socket;
    private readonly HomeAgentEngine _ha;
    private System.Diagnostics.Process? _mn;

    /// <param name="storePath">The node's store (default mn.db in the lab's temporary directory).</param>
    public MobileNodeCrashLab(ITestOutputHelper output, string? storePath = null)
    {
        _output = output;
        _storePath = storePath ?? Path.Combine(_directory, "mn.db");
        var ik = Convert.FromHexString(InitializationKeyHex);
        var provisioning = new MobileNodeProvisioning(HomeAddress, ik.ToArray(), new Spi(1000), new Spi(1001));
        var config = Path.Combine(_directory, "mn.conf");
        File.WriteAllText(config, $"""
            [mobile-node]
            home-agent-address = {HomeAgentAddress}
            home-address = {HomeAddress}
            care-of-address = 2001:db8:100::1
            initialization-key = hex:{InitializationKeyHex}
            spi-mn-to-ha = 1000
            spi-ha-to-mn = 1001
            max-retransmissions = 1000
            """);
        CryptographicOperations.ZeroMemory(ik);
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _labSocket = Path.Combine(_directory, "lab.sock");
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(_labSocket));
        _ha = new HomeAgentEngine(new HomeAgentOptions { Address = HomeAgentAddress }, TimeProvider.System, new LocalRandomKeySource(),
            new RandomSpiSource(), new SocketSink(_socket, MnSocket), new InMemoryBindingStore());
        _ha.Provision(provisioning);
    }

    private string MnSocket => Path.Combine(_directory, "mn.sock");

    /// <summary>The HA's view of the node.</summary>
    public HomeAgentNodeView View => _ha.GetNode(HomeAddress)!;

    public long ReplayDrops => _ha.Counters.Dropped(DropReason.Replay);

    /// <summary>ESP packets the node sent, and how many of them repeated an (SPI, sequence number).</summary>
    public int FromNode { get; private set; }

    public int Reused { get; private set; }

    public void StartNode() => _mn = MipkeyProcess.Start(_directory, Log, "mn", "-c", "mn.conf", "--transport", "unix", "-i", MnSocket,
        "--unix-peer", _labSocket, "--store", _storePath, "--rekey-interval", "200ms", "--ping-interval", "50ms");

    /// <summary>SIGKILL (no handler runs, nothing flushed); <paramref name="whileDown"/> runs with the node dead.</summary>
    public void KillNode(Action? whileDown = null)
    {
        Assert.False(_mn!.HasExited, "mipkey mn died on its own:\n" + Logs());
        _mn.Kill();
        _mn.WaitForExit();
        _mn.Dispose();
        _mn = null;
        whileDown?.Invoke();
    }

    public void WaitForGenerationAbove(uint generation, string what)
    {
        var limit = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        while (View.Newest.Value <= generation || !View.NewestConfirmed)
        {
            Assert.True(DateTimeOffset.UtcNow < limit, $"no {what} within 30 s (HA at {View}):\n{Logs()}");
            Assert.False(_mn!.HasExited, $"mipkey mn exited with {(_mn.HasExited ? _mn.ExitCode : 0)}:\n{Logs()}");
            Step();
        }
    }

    public void RunFor(TimeSpan duration)
    {
        var until = DateTimeOffset.UtcNow + duration;
        while (DateTimeOffset.UtcNow < until)
        {
            Step();
        }
    }

    public static int Count(string text, string word)
    {
        int count = 0;
        for (int i = text.IndexOf(word, StringComparison.Ordinal); i >= 0; i = text.IndexOf(word, i + word.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    /// <summary>Receives from the node for up to 10 ms, checks and delivers each datagram to the HA, runs the HA's timers.</summary>
    private void Step()
    {
        if (_socket.Poll(10_000, SelectMode.SelectRead))
        {
            while (_socket.Available > 0)
            {
                int length = _socket.Receive(_buffer);
                var datagram = _buffer.AsSpan(0, length);
                if (EngineFuzzer.TryEspIdentity(datagram, out uint spi, out uint sequence))
                {
                    FromNode++;
                    if (!_sent.Add((spi, sequence)))
                    {
                        Reused++;
                        _output.WriteLine($"the node sent SPI {spi} sequence {sequence} twice");
                    }
                }
                _ha.Receive(datagram, _inner);
            }
        }
        if (_ha.NextDeadline is { } due && due <= DateTimeOffset.UtcNow)
        {
            _ha.Tick();
        }
    }

    private void Log(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_logLock)
        {
            _logs.AppendLine(line);
        }
    }

    public string Logs()
    {
        lock (_logLock)
        {
            return _logs.ToString();
        }
    }

    public void Dispose()
    {
        if (_mn is { HasExited: false })
        {
            _mn.Kill();
            _mn.WaitForExit();
        }
        _mn?.Dispose();
        _ha.Dispose();
        _socket.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The HA engine's output, sent to the node's socket (lost while the node is down, as on a network).</summary>
    private sealed class SocketSink(Socket socket, string peer) : IDatagramSink
    {
        private readonly UnixDomainSocketEndPoint _peer = new(peer);

        public void Send(ReadOnlySpan<byte> datagram)
        {
            try
            {
                socket.SendTo(datagram, SocketFlags.None, _peer);
            }
            catch (SocketException)
            {
            }
        }
    }
}
