using System.Globalization;
using MipKeyAgent.Store;
using MipKeyAgent.TestSupport;
using Xunit.Abstractions;

namespace MipKeyAgent.Cli.Tests.CrashSafety;

/// <summary>
/// A hot-standby pair on a real PostgreSQL (a throwaway cluster): the active <c>mipkey ha</c> is killed with SIGKILL at
/// seeded random moments of a rekey storm, still holding its lease; the standby (<c>--standby</c>, running and waiting
/// before the kill) waits for the lease to expire, takes it, loads the bindings and answers; a new standby starts beside it. The checks are <see cref="HomeAgentStormLab"/>'s, as for the
/// SQLite restarts: no node re-initializes, no SPI or generation names two secrets, no (SPI, sequence number) pair is
/// sent twice across all the HAs, no generation goes back, every new active knows what its predecessor announced; and the
/// whole run's capture (every datagram both ways, written by the lab) read back: no (destination, SPI, counter) carries two
/// different ESP payloads.
/// </summary>
/// <remarks>
/// CI runs 10 nodes and 4 kills. The full size runs by hand (docs/cluster.md):
/// <c>MIPKEY_FAILOVER_NODES=1000 MIPKEY_FAILOVER_KILLS=20 MIPKEY_FAILOVER_REKEY_MS=4000 dotnet test tests/MipKeyAgent.Cli.Tests
/// --no-build -c Release --filter FullyQualifiedName~HomeAgentFailoverTests --logger "console;verbosity=detailed"</c>.
/// </remarks>
public sealed class HomeAgentFailoverTests(ITestOutputHelper output)
{
    private const int Seed = 13_2026;

    private static readonly int Nodes = Size("MIPKEY_FAILOVER_NODES", 10);
    private static readonly int Failovers = Size("MIPKEY_FAILOVER_KILLS", 4);
    private static readonly int RekeyMilliseconds = Size("MIPKEY_FAILOVER_REKEY_MS", 400);
    private static readonly int LeaseSeconds = Size("MIPKEY_FAILOVER_LEASE_SECONDS", 2);

    [Fact]
    public void SigkillActive_StandbyTakesTheLease_NodesGoOnWithoutReinitOrReuse()
    {
        using var cluster = new PostgresCluster();
        string url = cluster.Url(cluster.CreateDatabase());
        using var lab = new HomeAgentStormLab(output, Seed, Nodes, RekeyMilliseconds, "failover.pcap");
        string capture = Path.Combine(lab.WorkingDirectory, "failover.pcap");
        string masterKey = Path.Combine(lab.WorkingDirectory, "pair.key");
        MasterKey.Create(masterKey);
        var random = new Random(Seed);
        var takeovers = new List<TimeSpan>();
        var kills = new List<string>();
        string[] Pair(int incarnation) => ["--master-key", masterKey, "--lease-seconds", LeaseSeconds.ToString(CultureInfo.InvariantCulture),
            "--lease-holder", string.Create(CultureInfo.InvariantCulture, $"ha-{incarnation}")];
        lab.StartHomeAgent(url, Pair(0));
        lab.WaitUntilStarted();
        // As in a deployed pair, the standby is up and waiting before the active dies: the failover is the lease's expiry, the
        // standby's poll, its load of the bindings and its first answers, not a process start.
        lab.StartStandby(url, "status-1.sock", [.. Pair(1), "--standby"]);
        lab.RunFor(TimeSpan.FromSeconds(1));
        for (int failover = 1; failover <= Failovers; failover++)
        {
            lab.RunFor(TimeSpan.FromMilliseconds(random.Next(0, 1500)));
            lab.KillHomeAgent();
            kills.Add(string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.UtcNow:HH:mm:ss.fff} kill {failover}"));
            // Until the standby's status says it is active (its lease taken, its bindings loaded).
            lab.WaitUntilStarted();
            takeovers.Add(DateTimeOffset.UtcNow - lab.StartedAt);
            if (failover < Failovers)
            {
                lab.StartStandby(url, string.Create(CultureInfo.InvariantCulture, $"status-{failover + 1}.sock"), [.. Pair(failover + 1), "--standby"]);
            }
        }
        int converged = lab.Converge(TimeSpan.FromSeconds(40 + (Nodes / 20)));
        lab.KillHomeAgent();
        lab.CloseCapture();
        var wire = EspCounterUniqueness.Check(capture);

        string summary = string.Create(CultureInfo.InvariantCulture,
            $"failover: {Failovers} SIGKILLs of the active, {Nodes} nodes, {lab.Rekeys} rekeys, {lab.Reinitializations} re-inits, " +
            $"{lab.ReusedSpis} reused SPIs, {lab.ReusedGenerations} reused generations, {lab.ReusedSequenceNumbers} reused sequence numbers, " +
            $"{lab.Rollbacks} rollbacks, {lab.LostAnnouncements} lost announcements, converged {converged}/{Nodes}, " +
            $"kill to standby serving (lease {LeaseSeconds} s): {string.Join(", ", takeovers.Select(t => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)))} s; " +
            $"{lab.WaitingAtKills} nodes mid-exchange at the kills; kill to the new active's first answer: {Percentiles(lab.Restorations)}; a node's wait for an answer across a failover " +
            $"({lab.NodeRestorations.Count} waits): {Percentiles(lab.NodeRestorations)}; capture: {wire}");
        output.WriteLine(summary);
        Console.WriteLine(summary);
        // The timeline of each failover (the kill, the lease taken with the takeover's read, the host answering), in UTC.
        foreach (string line in kills.Concat(lab.Logs().Split('\n').Where(l => l.Contains("took the lease", StringComparison.Ordinal)
            || l.Contains("home agent started", StringComparison.OrdinalIgnoreCase))).Order(StringComparer.Ordinal))
        {
            output.WriteLine(line.TrimEnd());
        }

        Assert.Equal(0, lab.Reinitializations);
        Assert.Equal(0, lab.ReusedSpis);
        Assert.Equal(0, lab.ReusedGenerations);
        Assert.Equal(0, lab.ReusedSequenceNumbers);
        Assert.Equal(0, lab.Rollbacks);
        Assert.Equal(0, lab.LostAnnouncements);
        Assert.Equal(Failovers, lab.AnnouncementChecks);
        Assert.Equal(Nodes, converged);
        Assert.True(wire.Reuses.Count == 0, wire.ToString());
        Assert.True(wire.EspPackets > 0, wire.ToString());
        // The standby waited for the lease of the killed active: it took over only once the lease had expired.
        Assert.All(takeovers, t => Assert.True(t >= TimeSpan.FromSeconds(LeaseSeconds) / 2, $"took over after {t} with a {LeaseSeconds} s lease"));
    }

    private static int Size(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0 ? value : fallback;

    private static string Percentiles(List<TimeSpan> samples)
    {
        if (samples.Count == 0)
        {
            return "none";
        }
        var sorted = samples.Select(t => t.TotalSeconds).Order().ToArray();
        double At(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return string.Create(CultureInfo.InvariantCulture, $"p50 {At(0.5):0.00} s, p99 {At(0.99):0.00} s, max {sorted[^1]:0.00} s");
    }
}
