using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace MipKeyAgent.Cli.Tests.CrashSafety;

/// <summary>
/// A real <c>mipkey mn</c> (<see cref="MobileNodeCrashLab"/>) is killed with SIGKILL at seeded
/// random moments, then restarted on the same store. Checks: every restart continues under the
/// stored keys (no new init: the HA's epoch stays 1, the node logs one InitStarted in all its lives
/// and one StateRestored per restart); no (SPI, ESP sequence number) is ever sent twice by the node
/// across its incarnations; the HA drops nothing as a replay; rekeying goes on after each restart.
/// </summary>
public sealed class MobileNodeCrashTests(ITestOutputHelper output)
{
    private const int Kills = 6;
    private const int Seed = 6_1001;

    [Fact]
    public void SigkillWhileRekeying_SixRestarts_ContinueWithoutReinitOrSequenceReuse()
    {
        using var lab = new MobileNodeCrashLab(output);
        var random = new Random(Seed);
        var watch = Stopwatch.StartNew();

        lab.StartNode();
        lab.WaitForGenerationAbove(2, "the first init and two rekeys");
        for (int kill = 0; kill < Kills; kill++)
        {
            // A random moment of a node that rekeys every 200 ms and seals a ping every 50 ms.
            lab.RunFor(TimeSpan.FromMilliseconds(random.Next(0, 600)));
            uint atKill = lab.View.Newest.Value;
            lab.KillNode();
            lab.StartNode();
            lab.WaitForGenerationAbove(atKill + 2, $"two rekeys after restart {kill + 1}");
        }
        lab.KillNode();

        var view = lab.View;
        string logs = lab.Logs();
        int initStarts = MobileNodeCrashLab.Count(logs, "InitStarted");
        int restored = MobileNodeCrashLab.Count(logs, "StateRestored");
        string summary = string.Create(CultureInfo.InvariantCulture,
            $"mn crash: {Kills} kills, generation {view.Newest}, epoch {view.InitEpoch}, {initStarts} InitStarted, {restored} StateRestored, " +
            $"{lab.FromNode} packets from the node, {lab.Reused} reused (SPI, seq), ha replay drops {lab.ReplayDrops}, " +
            $"{watch.Elapsed.TotalSeconds:0}s");
        output.WriteLine(summary);
        Console.WriteLine(summary);

        Assert.Equal(1UL, view.InitEpoch);
        Assert.Equal(1, initStarts);
        Assert.Equal(Kills, restored);
        Assert.Equal(0, lab.Reused);
        Assert.Equal(0, lab.ReplayDrops);
        Assert.True(lab.FromNode > 100, summary);
        Assert.True(view.Newest.Value > 2 * (Kills + 1), summary);
        Assert.DoesNotContain(MobileNodeCrashLab.InitializationKeyHex, logs, StringComparison.Ordinal);
    }
}
