using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using MipKeyAgent.Cli.Tests.CrashSafety;
using Xunit.Abstractions;

namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// The power-loss side of <c>Cli.Tests/CrashSafety/MobileNodeCrashTests</c>, as
/// <see cref="PowerLossTests"/> is for the HA: a real <c>mipkey mn</c> keeps its SQLite store,
/// master key and rollback anchor on an ext4 loop disk (<see cref="PowerLossDisk"/>) while it
/// rekeys every 200 ms and pings every 50 ms; at seeded random moments it is killed and the disk
/// loses every write that was not fsynced, then the node restarts on that disk. The same checks as
/// the crash test: no re-initialization (the anchor, which may lose its unsynced tail, never
/// refuses the store), no (SPI, sequence number) sent twice, no replay drop at the HA, rekeying
/// goes on. At every cut a file written without fsync must be gone, else the cut did not model a
/// power loss.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class MobileNodePowerLossTests(ITestOutputHelper output)
{
    private const int Cuts = 6;
    private const int Seed = 6_2027;

    [Fact]
    public void PowerLossWhileRekeying_UnsyncedWritesLost_ContinuesWithoutReinitOrSequenceReuse()
    {
        using var disk = new PowerLossDisk();
        // The store's path stays the same across cuts: each cut mounts the copy at a new mount point, reached through a link.
        string link = Path.Combine(Path.GetTempPath(), "mipkey-mn-powerloss-" + Guid.NewGuid().ToString("N"));
        File.CreateSymbolicLink(link, disk.MountPoint);
        try
        {
            using var lab = new MobileNodeCrashLab(output, Path.Combine(link, "mn.db"));
            var random = new Random(Seed);
            var watch = Stopwatch.StartNew();
            int unsyncedSurvived = 0;

            lab.StartNode();
            lab.WaitForGenerationAbove(2, "the first init and two rekeys");
            for (int cut = 0; cut < Cuts; cut++)
            {
                lab.RunFor(TimeSpan.FromMilliseconds(random.Next(0, 600)));
                uint atKill = lab.View.Newest.Value;
                string canary = string.Create(CultureInfo.InvariantCulture, $"unsynced-{cut}");
                var written = disk.WriteUnsynced(canary);
                lab.KillNode(whileDown: () =>
                {
                    disk.CutPower();
                    File.Delete(link);
                    File.CreateSymbolicLink(link, disk.MountPoint);
                });
                if (disk.Survived(canary, written))
                {
                    unsyncedSurvived++;
                    output.WriteLine($"cut {cut}: a file written without fsync survived the power cut");
                }
                lab.StartNode();
                lab.WaitForGenerationAbove(atKill + 2, $"two rekeys after power cut {cut + 1}");
            }
            lab.KillNode();

            var view = lab.View;
            string logs = lab.Logs();
            int initStarts = MobileNodeCrashLab.Count(logs, "InitStarted");
            int restored = MobileNodeCrashLab.Count(logs, "StateRestored");
            string summary = string.Create(CultureInfo.InvariantCulture,
                $"mn power loss: {disk.Cuts} cuts, {unsyncedSurvived} unsynced files survived, generation {view.Newest}, epoch {view.InitEpoch}, " +
                $"{initStarts} InitStarted, {restored} StateRestored, {lab.FromNode} packets from the node, {lab.Reused} reused (SPI, seq), " +
                $"ha replay drops {lab.ReplayDrops}, {watch.Elapsed.TotalSeconds:0}s");
            output.WriteLine(summary);
            Console.WriteLine(summary);

            Assert.True(File.Exists(Path.Combine(disk.MountPoint, "mn.db.anchor")), "the node kept no rollback anchor");
            Assert.Equal(Cuts, disk.Cuts);
            Assert.Equal(0, unsyncedSurvived);
            Assert.Equal(1UL, view.InitEpoch);
            Assert.Equal(1, initStarts);
            Assert.Equal(Cuts, restored);
            Assert.Equal(0, lab.Reused);
            Assert.Equal(0, lab.ReplayDrops);
            Assert.True(view.Newest.Value > 2 * (Cuts + 1), summary);
            Assert.DoesNotContain(MobileNodeCrashLab.InitializationKeyHex, logs, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(link);
        }
    }
}
