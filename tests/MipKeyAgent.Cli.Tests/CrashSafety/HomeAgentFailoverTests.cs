using System.Diagnostics;
using System.Globalization;
using MipKeyAgent.Store;
using MipKeyAgent.TestSupport;
using Xunit.Abstractions;

namespace MipKeyAgent.Cli.Tests.CrashSafety;

/// <summary>
/// A hot-standby pair on a real PostgreSQL (a throwaway cluster): the active <c>mipkey ha</c> is killed with SIGKILL at
/// seeded random moments of a rekey storm, still holding its lease; a standby (<c>--standby</c>) waits for the lease
/// to expire, takes it, loads the bindings and answers. The checks are <see cref="HomeAgentStormLab"/>'s, as for the
/// SQLite restarts: no node re-initializes, no SPI or generation names two secrets, no (SPI, sequence number) pair is
/// sent twice across all the HAs, no generation goes back, every new active knows what its predecessor announced.
/// </summary>
public sealed class HomeAgentFailoverTests(ITestOutputHelper output)
{
    private const int Nodes = 10;
    private const int Failovers = 4;
    private const int Seed = 13_2026;

    [Fact]
    public void SigkillActive_StandbyTakesTheLease_NodesGoOnWithoutReinitOrReuse()
    {
        using var cluster = new PostgresCluster();
        string url = cluster.Url(cluster.CreateDatabase());
        using var lab = new HomeAgentStormLab(output, Seed, Nodes);
        string masterKey = Path.Combine(lab.WorkingDirectory, "pair.key");
        MasterKey.Create(masterKey);
        var random = new Random(Seed);
        var takeovers = new List<TimeSpan>();
        lab.StartHomeAgent(url, "--master-key", masterKey, "--lease-seconds", "2", "--lease-holder", "ha-0");
        lab.WaitUntilStarted();
        lab.RunFor(TimeSpan.FromSeconds(1));
        for (int failover = 1; failover <= Failovers; failover++)
        {
            lab.RunFor(TimeSpan.FromMilliseconds(random.Next(0, 1500)));
            lab.KillHomeAgent();
            var killed = Stopwatch.StartNew();
            lab.StartHomeAgent(url, "--master-key", masterKey, "--lease-seconds", "2", "--standby",
                "--lease-holder", string.Create(CultureInfo.InvariantCulture, $"ha-{failover}"));
            lab.WaitUntilStarted();
            takeovers.Add(killed.Elapsed);
        }
        int converged = lab.Converge(TimeSpan.FromSeconds(40));
        lab.KillHomeAgent();

        string summary = string.Create(CultureInfo.InvariantCulture,
            $"failover: {Failovers} SIGKILLs of the active, {Nodes} nodes, {lab.Rekeys} rekeys, {lab.Reinitializations} re-inits, " +
            $"{lab.ReusedSpis} reused SPIs, {lab.ReusedGenerations} reused generations, {lab.ReusedSequenceNumbers} reused sequence numbers, " +
            $"{lab.Rollbacks} rollbacks, {lab.LostAnnouncements} lost announcements, converged {converged}/{Nodes}, " +
            $"kill to standby serving (lease 2 s): {string.Join(", ", takeovers.Select(t => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)))} s");
        output.WriteLine(summary);
        Console.WriteLine(summary);

        Assert.Equal(0, lab.Reinitializations);
        Assert.Equal(0, lab.ReusedSpis);
        Assert.Equal(0, lab.ReusedGenerations);
        Assert.Equal(0, lab.ReusedSequenceNumbers);
        Assert.Equal(0, lab.Rollbacks);
        Assert.Equal(0, lab.LostAnnouncements);
        Assert.Equal(Failovers, lab.AnnouncementChecks);
        Assert.Equal(Nodes, converged);
        // The standby waited for the lease of the killed active: it took over only once the lease had expired.
        Assert.All(takeovers, t => Assert.True(t >= TimeSpan.FromSeconds(1), $"took over after {t} with a 2 s lease"));
    }
}
