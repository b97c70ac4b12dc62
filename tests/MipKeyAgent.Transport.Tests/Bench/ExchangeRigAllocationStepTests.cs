using MipKeyAgent.Tools.Bench;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Bench;

/// <summary>
/// The rig's per-step allocation probe (the bench's <c>alloc [steady|rekey] [suite]</c> mode):
/// with <c>rekey: true</c> every probed exchange installs a new generation on both sides.
/// </summary>
public sealed class ExchangeRigAllocationStepTests
{
    [Theory]
    [InlineData(EspSuite.AesGcm256)]
    [InlineData(EspSuite.AesCbc128HmacSha256)]
    public void AllocationPerStep_Rekey_EachExchangeInstallsAGeneration(EspSuite suite)
    {
        using var rig = new ExchangeRig(suite);
        long mobileNodeUpdates = rig.MobileNode.Counters.Updates;
        long homeAgentAccepted = rig.HomeAgent.Counters.ControlAccepted;

        var steps = rig.AllocationPerStep(50, rekey: true);

        Assert.Equal(mobileNodeUpdates + 50, rig.MobileNode.Counters.Updates);
        Assert.Equal(homeAgentAccepted + 50, rig.HomeAgent.Counters.ControlAccepted);
        Assert.Equal(["MN builds BU", "HA receives BU, sends BA", "MN receives BA"], steps.Select(s => s.Step));
        // A new generation is an object graph on both sides (keys, SPI entries, a wrapped or unwrapped secret).
        Assert.All(steps.Skip(1), s => Assert.True(s.Bytes > 0, $"{s.Step}: {s.Bytes} B"));
    }

    [Fact]
    public void AllocationPerStep_Steady_InstallsNothing()
    {
        using var rig = new ExchangeRig();
        long mobileNodeUpdates = rig.MobileNode.Counters.Updates;

        rig.AllocationPerStep(50);

        Assert.Equal(mobileNodeUpdates, rig.MobileNode.Counters.Updates);
    }
}
