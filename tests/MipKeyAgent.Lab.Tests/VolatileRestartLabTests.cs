using System.Diagnostics;
using System.Security.Cryptography;
using MipKeyAgent.Hosting;
using MipKeyAgent.TestSupport;
using Xunit.Abstractions;
using MipKeyAgent.Tools.Lab;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// PROTOCOL.md section 8.1 with the released programs: a <c>--volatile</c> <c>mipkey ha</c> and a
/// <c>--volatile</c> <c>mipkey mn</c> in the lab's namespaces, each killed with SIGKILL and started
/// again 50 times (HA alone, both together, node alone), pings every 200 ms through the tunnel.
/// Every ESP datagram on the home link is captured from the router's side (not by the agents, which
/// lose their buffers when killed) and no (destination, SPI, counter) may appear twice. Then the
/// node's and the HA's IK counter files are deleted: both refuse, naming the node and
/// <c>mipkey provision rotate-ik</c>, and after the rotation the HA serves the node again.
/// </summary>
public sealed class VolatileRestartLabTests(ITestOutputHelper output)
{
    private const int HomeAgentAlone = 10;
    private const int Both = 40;
    private const int NodeAlone = 10;

    private const string InitializationKey = "hex:5f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    [Fact]
    public async Task VolatileAgents_FiftyKillRestartsEach_NoKeyCounterPairTwiceAndLostCountersRefused()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException("The lab tests need root (network namespaces, raw sockets).");
        }

        var prefix = $"mk{Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant()}-";
        var here = AppContext.BaseDirectory;
        var topology = new NamespaceTopology(prefix, nodes: 1);
        var dir = Directory.CreateTempSubdirectory("mipkey-volatile-").FullName;
        var processes = new List<AgentProcess>();
        AgentProcess Track(AgentProcess p)
        {
            processes.Add(p);
            return p;
        }
        try
        {
            await Task.Run(() => topology.Up(Shell.Command));
            var haConf = Private(Path.Combine(dir, "ha.conf"), $"""
                [home-agent]
                address = 2001:db8:1::1

                [mobile-node mn1]
                home-address = 2001:db8:2::1
                initialization-key = {InitializationKey}
                spi-mn-to-ha = 1000
                spi-ha-to-mn = 1001
                """);
            var mnConf = Private(Path.Combine(dir, "mn1.conf"), $"""
                [mobile-node]
                home-agent-address = 2001:db8:1::1
                home-address = 2001:db8:2::1
                care-of-address = 2001:db8:100::1
                initialization-key = {InitializationKey}
                spi-mn-to-ha = 1000
                spi-ha-to-mn = 1001
                # A KEY-UPDATE-REQ every second, one retransmission: a restarted HA (which forgot the
                # node) is found out and the node re-initializes within a few seconds.
                rekey-interval = 1s
                max-retransmissions = 1
                """);
            var haSocket = Path.Combine(dir, "ha.sock");
            var mnSocket = Path.Combine(dir, "mn1.sock");
            string[] ha = [AgentProcess.Dotnet, AgentProcess.MipkeyDll, "ha", "-c", haConf, "-i", $"{prefix}h0", "--volatile", "--status-socket", haSocket];
            string[] mn = [AgentProcess.Dotnet, AgentProcess.MipkeyDll, "mn", "-c", mnConf, "-i", $"{prefix}f1", "--volatile",
                "--ping-interval", "200ms", "--status-socket", mnSocket];

            var capture = Path.Combine(dir, "home-link.pcap");
            var sniffer = Track(AgentProcess.Start($"{prefix}rtr", Shell.Python, Path.Combine(here, "lab", "link_capture.py"), $"{prefix}r0", capture));
            await WaitFor("the capture", () => Task.FromResult(sniffer.Output.Contains("ready", StringComparison.Ordinal)), TimeSpan.FromSeconds(20));

            var clock = Stopwatch.StartNew();
            var homeAgent = Track(AgentProcess.Start($"{prefix}home", ha));
            await Status(haSocket);
            var node = Track(AgentProcess.Start($"{prefix}fl1", mn));
            await NodeInitialized(mnSocket, 1);
            int haRestarts = 0, mnRestarts = 0;
            for (int i = 0; i < HomeAgentAlone + Both + NodeAlone; i++)
            {
                bool restartHa = i < HomeAgentAlone + Both;
                bool restartMn = i >= HomeAgentAlone;
                long nodeInits = restartMn ? 0 : Counter(await Status(mnSocket), "inits");
                if (restartHa)
                {
                    await homeAgent.KillAsync();
                    haRestarts++;
                }
                if (restartMn)
                {
                    await node.KillAsync();
                    mnRestarts++;
                }
                if (restartHa)
                {
                    homeAgent = Track(AgentProcess.Start($"{prefix}home", ha));
                    await Status(haSocket);
                }
                if (restartMn)
                {
                    node = Track(AgentProcess.Start($"{prefix}fl1", mn));
                }
                // The node (re)initialized with the HA of now, and a ping came back through the tunnel.
                await NodeInitialized(mnSocket, nodeInits + 1);
            }
            var elapsed = clock.Elapsed;
            await node.StopAsync(TimeSpan.FromSeconds(5));
            await homeAgent.StopAsync(TimeSpan.FromSeconds(5));
            await sniffer.StopAsync(TimeSpan.FromSeconds(5));

            var report = EspCounterUniqueness.Check(capture);
            output.WriteLine($"{haRestarts} HA and {mnRestarts} MN kill -9 restarts in {elapsed.TotalSeconds:F0} s; {report}");
            Assert.Equal(50, haRestarts);
            Assert.Equal(50, mnRestarts);
            Assert.True(report.Reuses.Count == 0, report.ToString());
            // The capture saw every run: at the least its init BU and the BA cross the home link under ESP, and
            // where the node restarted also the echo and its reply its status waits for (more when
            // retransmissions, rekeys or further pings fall in the run).
            Assert.True(report.EspPackets >= 2 * HomeAgentAlone + 4 * (Both + NodeAlone), report.ToString());
            var ikCounters = File.ReadAllText(haConf + ".ik-counters");
            output.WriteLine(ikCounters);

            // Counters lost: the node refuses to start, and so does the HA (its only node).
            File.Delete(mnConf + ".ik-counters");
            var (mnCode, mnOutput) = await Shell.RunAsync("ip", ["netns", "exec", $"{prefix}fl1", .. mn], TimeSpan.FromSeconds(60), check: false);
            Assert.Equal(2, mnCode);
            Assert.Contains("mn1 (2001:db8:2::1): the initialization key's ESP counters are lost", mnOutput, StringComparison.Ordinal);
            Assert.Contains("mipkey provision rotate-ik", mnOutput, StringComparison.Ordinal);
            File.Delete(haConf + ".ik-counters");
            var (haCode, haOutput) = await Shell.RunAsync("ip", ["netns", "exec", $"{prefix}home", .. ha], TimeSpan.FromSeconds(60), check: false);
            Assert.Equal(2, haCode);
            Assert.Contains($"mipkey provision rotate-ik -c {haConf} --name mn1", haOutput, StringComparison.Ordinal);

            // Recovery: a new initialization key, which the used list does not name, is served again.
            await Shell.RunAsync(AgentProcess.Dotnet, [AgentProcess.MipkeyDll, "provision", "rotate-ik", "-c", haConf, "--name", "mn1",
                "--new-key-file", Path.Combine(dir, "mn1-2.key"), "--store", Path.Combine(dir, "none.db")], TimeSpan.FromSeconds(60));
            var recovered = Track(AgentProcess.Start($"{prefix}home", ha));
            var status = await Status(haSocket);
            Assert.Single(status.Bindings);
            Assert.DoesNotContain("are lost", recovered.Output, StringComparison.Ordinal);
            await recovered.StopAsync(TimeSpan.FromSeconds(5));
        }
        finally
        {
            foreach (var p in processes)
            {
                p.Dispose();
            }
            await Task.Run(() => topology.Down(Shell.Command));
            Directory.Delete(dir, recursive: true);
        }
    }

    private static long Counter(AgentStatus status, string name) => status.Counters.GetValueOrDefault(name);

    /// <summary>The status of the agent on <paramref name="socket"/>, waiting for it to answer (start-up under load takes seconds).</summary>
    private static async Task<AgentStatus> Status(string socket)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                return await StatusClient.GetAsync(socket, null);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or System.Net.Sockets.SocketException or TaskCanceledException
                && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    private static Task NodeInitialized(string mnSocket, long inits) => WaitFor($"the node's init {inits} and an echo reply", async () =>
    {
        var status = await Status(mnSocket);
        return Counter(status, "inits") >= inits && Counter(status, "data_delivered") >= 1;
    }, TimeSpan.FromSeconds(60));

    private static async Task WaitFor(string what, Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(100);
        }
    }

    private static string Private(string path, string text)
    {
        File.WriteAllText(path, text);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return path;
    }
}
