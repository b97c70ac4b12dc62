namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>Binding cache behaviour around the key exchange: store ordering, deregistration, expiry, hot path.</summary>
public sealed class BindingLifecycleTests
{
    [Fact]
    public void NewGeneration_StoreWrittenBeforeTheAnnouncingBaLeaves()
    {
        using var bed = Testbed.Started();
        int sentAtSave = -1;
        var store = new ObservingStore(bed.HomeAgentStore, record =>
        {
            if (record.HighestIssued == new Generation(2) && sentAtSave < 0)
            {
                sentAtSave = bed.Driver.Sent.Count;
            }
        });
        bed.HomeAgent.Dispose();
        var ha = new HomeAgentEngine(new HomeAgentOptions { Address = Testbed.HomeAgentAddress }, bed.Clock, new SeededKeySource(5),
            new SeededSpiSource(5), bed.Driver, store);
        ha.Provision(bed.Node.Provisioning);
        var inner = new byte[70000];
        bed.Driver.Attach(Testbed.HomeAgentAddress, d => ha.Receive(d, inner));
        Assert.Equal(new Generation(1), ha.GetNode(bed.Node.HomeAddress)!.Newest);

        bed.Update();

        Assert.True(sentAtSave > 0);
        Assert.Equal(bed.Node.CareOf, EngineDriver.DestinationOf(bed.Driver.Sent[sentAtSave]));
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        ha.Dispose();
    }

    [Fact]
    public void Deregister_LifetimeZero_BothSidesDropDynamicKeysAndReregistrationInitializes()
    {
        using var bed = Testbed.Started();
        bed.Update();
        var dropped = bed.HomeAgent.GetKeyRing(bed.Node.HomeAddress)!.Newest;

        bed.Node.Engine.Deregister();
        bed.Driver.Pump();

        Assert.Null(bed.HomeAgentView().CareOfAddress);
        Assert.Equal(Generation.Initialization, bed.HomeAgentView().Newest);
        Assert.Equal(Generation.Initialization, bed.Node.View.Newest);
        Assert.False(bed.Node.View.Registered);
        Assert.True(dropped.SecretIsZeroed());
        Assert.Equal(1, bed.HomeAgent.Counters.Deregistrations);
        Assert.Equal(1, bed.Node.Engine.Counters.Deregistrations);
        var buffer = new byte[256];
        Assert.Equal(SealResult.NoBinding, bed.HomeAgent.SealData(bed.Node.HomeAddress, bed.InnerPacket(bed.Node), buffer, out _));

        bed.Node.Engine.MoveTo(Ipv6Address.Parse("2001:db8:100::99"));
        bed.Node.CareOf = Ipv6Address.Parse("2001:db8:100::99");
        var node = bed.Node;
        var inner = new byte[70000];
        bed.Driver.Attach(node.CareOf, d => node.Engine.Receive(d, inner));
        bed.Driver.Pump();
        Assert.Equal(2UL, bed.HomeAgentView().InitEpoch);
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        Assert.Equal(node.CareOf, bed.HomeAgentView().CareOfAddress);
        bed.AssertDataFlows();
    }

    [Fact]
    public void BindingRegistered_FirstRegistrationAndMoveOnly_NotOnRefreshOrRekey()
    {
        using var bed = Testbed.Started();
        Assert.Single(bed.Events, e => e.Kind == ProtocolEventKind.BindingRegistered && e.HomeAddress == bed.Node.HomeAddress);
        var seen = bed.HomeAgent.GetNode(bed.Node.HomeAddress)!.CareOfAddress;
        Assert.Equal(bed.Node.CareOf, seen);

        bed.Node.Engine.RequestUpdate();
        bed.Run(TimeSpan.FromSeconds(400));
        Assert.Single(bed.Events, e => e.Kind == ProtocolEventKind.BindingRegistered);

        var moved = Ipv6Address.Parse("2001:db8:100::77");
        bed.Node.Engine.MoveTo(moved);
        bed.Node.CareOf = moved;
        var node = bed.Node;
        var inner = new byte[70000];
        bed.Driver.Attach(moved, d => node.Engine.Receive(d, inner));
        bed.Driver.Pump();
        Assert.Equal(2, bed.Events.Count(e => e.Kind == ProtocolEventKind.BindingRegistered));
        Assert.Equal(moved, bed.HomeAgentView().CareOfAddress);
    }

    [Fact]
    public void BindingLifetime_NodeRefreshesBeforeExpiry_BindingNeverLapses()
    {
        using var bed = Testbed.Started();

        bed.Run(TimeSpan.FromSeconds(2000));

        Assert.Equal(0, bed.HomeAgent.Counters.BindingsExpired);
        Assert.NotNull(bed.HomeAgentView().CareOfAddress);
        bed.AssertDataFlows();
    }

    [Fact]
    public void BindingLifetime_NodeSilent_HomeAgentExpiresBindingButKeepsKeys()
    {
        using var bed = Testbed.Started();
        bed.Driver.DropWhen = _ => true;

        bed.Run(TimeSpan.FromSeconds(421));

        Assert.Equal(1, bed.HomeAgent.Counters.BindingsExpired);
        Assert.Null(bed.HomeAgentView().CareOfAddress);
        Assert.Equal(new Generation(1), bed.HomeAgentView().Newest);
    }

    [Fact]
    public void DataPath_SteadyState_NoHeapAllocationPerPacket()
    {
        using var bed = Testbed.Started();
        var inner = bed.InnerPacket(bed.Node);
        var datagram = new byte[2048];
        var opened = new byte[2048];
        void RoundTrip()
        {
            bed.HomeAgent.SealData(bed.Node.HomeAddress, inner, datagram, out int down);
            bed.Node.Engine.Receive(datagram.AsSpan(0, down), opened);
            bed.Node.Engine.SealData(inner, datagram, out int up);
            bed.HomeAgent.Receive(datagram.AsSpan(0, up), opened);
        }
        for (int i = 0; i < 50; i++)
        {
            RoundTrip();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            RoundTrip();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(1050, bed.HomeAgent.Counters.DataDelivered);
    }

    private sealed class ObservingStore(IBindingStore inner, Action<BindingRecord> onSave) : IBindingStore
    {
        public BindingRecord? Load(Ipv6Address homeAddress) => inner.Load(homeAddress);

        public void Save(BindingRecord record)
        {
            onSave(record);
            inner.Save(record);
        }

        public void Remove(Ipv6Address homeAddress) => inner.Remove(homeAddress);

        public uint LoadInitializationSequenceReserved(Ipv6Address homeAddress) => inner.LoadInitializationSequenceReserved(homeAddress);

        public void SaveInitializationSequenceReserved(Ipv6Address homeAddress, uint reserved) =>
            inner.SaveInitializationSequenceReserved(homeAddress, reserved);

        public IReadOnlyCollection<uint> LoadRetiredSpis() => inner.LoadRetiredSpis();

        public void SaveRetiredSpis(IReadOnlyCollection<uint> spis) => inner.SaveRetiredSpis(spis);
    }
}
