using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Tools.Bench;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Bench;

/// <summary>
/// A steady-state BU/BA exchange (MN builds the BU, the HA opens it, stores the binding,
/// seals the BA, the MN opens the BA) allocates nothing on the heap. A behaviour assertion on
/// allocated bytes, not a timing one.
/// </summary>
public sealed class SteadyExchangeAllocationTests
{
    [Theory]
    [InlineData(EspSuite.AesGcm256)]
    [InlineData(EspSuite.AesCbc128HmacSha256)]
    public void SteadyExchange_WarmEngines_AllocatesNothingAndStillStoresEachBinding(EspSuite suite)
    {
        var store = new InMemoryBindingStore();
        using var rig = new ExchangeRig(suite, store);
        for (int i = 0; i < 200; i++)
        {
            rig.SteadyExchange();
        }
        long accepted = rig.HomeAgent.Counters.ControlAccepted;
        int saves = store.SaveCount;

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            rig.SteadyExchange();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        // The exchanges happened and each one was written to the store (before its BA: the engine's order).
        Assert.Equal(accepted + 1000, rig.HomeAgent.Counters.ControlAccepted);
        Assert.True(store.SaveCount >= saves + 1000, $"{store.SaveCount - saves} saves for 1000 BUs");
        var stored = store.Load(ExchangeRig.HomeAddress);
        Assert.NotNull(stored);
        Assert.Equal(rig.HomeAgent.GetNode(ExchangeRig.HomeAddress)!.LastSequence, stored.LastSequence);
        Assert.Equal(ExchangeRig.CareOfAddress, stored.CareOfAddress);
        Assert.NotNull(stored.Newest);
        Assert.Contains(stored.Newest.Secret, b => b != 0);
    }

    [Fact]
    public void SteadyExchange_DiscardingStore_AllocatesNothing()
    {
        using var rig = new ExchangeRig(EspSuite.AesGcm256, new DiscardingBindingStore());
        for (int i = 0; i < 200; i++)
        {
            rig.SteadyExchange();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            rig.SteadyExchange();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
