namespace MipKeyAgent.Protocol.Tests.Keys;

public sealed class KeyRingTests
{
    private static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:2::1");
    private static readonly DateTimeOffset Now = TestTime.Start;

    private static GenerationKeys Keys(uint generation, uint spiMnToHa, uint spiHaToMn)
    {
        var secret = new byte[32];
        new Random((int)generation).NextBytes(secret);
        return GenerationKeys.Create(new Generation(generation), secret, new Spi(spiMnToHa), new Spi(spiHaToMn), EspSuite.AesGcm256, Now);
    }

    private static KeyRing Ring(KeyRingSide side, SpiTable table) => new(side, HomeAddress, Keys(0, 300, 301), table);

    [Fact]
    public void InstallNext_FiveGenerations_NeverMoreThanIkPlusTwo()
    {
        var table = new SpiTable();
        using var ring = Ring(KeyRingSide.HomeAgent, table);

        for (uint g = 1; g <= 5; g++)
        {
            ring.InstallNext(Keys(g, 1000 + 2 * g, 1001 + 2 * g));
            Assert.True(ring.DynamicCount <= 2);
            Assert.True(ring.All().Count() <= 3);
        }

        Assert.Equal(new Generation(5), ring.Newest.Generation);
        Assert.Equal(new Generation(4), ring.Previous!.Generation);
        Assert.Equal(3 * 4, table.Count);
    }

    [Fact]
    public void InstallNext_ThirdGeneration_DroppedSecretAndSasAreZeroedAndUnregistered()
    {
        var table = new SpiTable();
        using var ring = Ring(KeyRingSide.HomeAgent, table);
        var first = Keys(1, 1000, 1001);
        ring.InstallNext(first);
        ring.InstallNext(Keys(2, 1002, 1003));

        ring.InstallNext(Keys(3, 1004, 1005));

        Assert.True(first.IsDisposed);
        Assert.True(first.SecretIsZeroed());
        Assert.False(table.TryGet(1000, out _));
        Assert.False(table.TryGet(1000 + Spi.DataOffset, out _));
        Assert.False(table.IsFree(new Spi(1000)));
    }

    [Fact]
    public void InstallAfterInit_TwoDynamicHeld_KeepsOnlyNewAndIk()
    {
        var table = new SpiTable();
        using var ring = Ring(KeyRingSide.MobileNode, table);
        var one = Keys(1, 1000, 1001);
        var two = Keys(2, 1002, 1003);
        ring.InstallNext(one);
        ring.InstallNext(two);

        ring.InstallAfterInit(Keys(7, 1004, 1005));

        Assert.True(one.SecretIsZeroed() && two.SecretIsZeroed());
        Assert.Equal(new Generation(7), ring.Newest.Generation);
        Assert.Same(ring.Initialization, ring.Previous);
        Assert.Equal(1, ring.DynamicCount);
    }

    [Theory]
    [InlineData(KeyRingSide.HomeAgent, 0u, 0u)]
    [InlineData(KeyRingSide.MobileNode, 0u, 0u)]
    [InlineData(KeyRingSide.HomeAgent, 1u, 0u)]
    [InlineData(KeyRingSide.MobileNode, 1u, 1u)]
    [InlineData(KeyRingSide.HomeAgent, 2u, 1u)]
    [InlineData(KeyRingSide.MobileNode, 2u, 2u)]
    public void Transmit_GenerationsHeld_FollowsSectionFourTable(KeyRingSide side, uint newest, uint expectedTransmit)
    {
        using var ring = Ring(side, new SpiTable());
        for (uint g = 1; g <= newest; g++)
        {
            ring.InstallNext(Keys(g, 1000 + 2 * g, 1001 + 2 * g));
        }

        Assert.Equal(new Generation(expectedTransmit), ring.Transmit.Generation);
    }

    [Fact]
    public void IsReceivable_TwoDynamicHeld_NewestAndPreviousOnly()
    {
        using var ring = Ring(KeyRingSide.HomeAgent, new SpiTable());
        ring.InstallNext(Keys(1, 1000, 1001));
        ring.InstallNext(Keys(2, 1002, 1003));

        Assert.True(ring.IsReceivable(ring.Newest));
        Assert.True(ring.IsReceivable(ring.Previous!));
        Assert.False(ring.IsReceivable(ring.Initialization));
    }

    [Fact]
    public void SpiTable_OneTableTwoPeers_EachSpiNamesPeerGenerationAndDirection()
    {
        var table = new SpiTable();
        using var a = new KeyRing(KeyRingSide.HomeAgent, Ipv6Address.Parse("2001:db8:2::1"), Keys(0, 300, 301), table);
        using var b = new KeyRing(KeyRingSide.HomeAgent, Ipv6Address.Parse("2001:db8:2::2"), Keys(0, 302, 303), table);
        b.InstallNext(Keys(1, 1000, 1001));

        Assert.True(table.TryGet(1001 + Spi.DataOffset, out var entry));
        Assert.Same(b, entry.Ring);
        Assert.Equal(new Generation(1), entry.Keys.Generation);
        Assert.Equal(KeyDirection.HaToMn, entry.Direction);
        Assert.True(entry.IsData);
        Assert.True(table.TryGet(300, out var ik));
        Assert.Same(a, ik.Ring);
        Assert.Equal(KeyDirection.MnToHa, ik.Direction);
        Assert.Throws<InvalidOperationException>(() => a.InstallNext(Keys(1, 1000, 1005)));
    }

    [Fact]
    public void PickPair_SourceProposesLiveAndRetiredSpis_SkipsThem()
    {
        var table = new SpiTable();
        using var ring = Ring(KeyRingSide.HomeAgent, table);
        ring.InstallNext(Keys(1, 1000, 1001));
        ring.InstallNext(Keys(2, 1002, 1003));
        ring.InstallNext(Keys(3, 1004, 1005));
        var source = new ScriptedSpiSource(300, 1000, 1002, 1002, 5000, 5000, 5001);

        var (mnToHa, haToMn) = table.PickPair(source);

        Assert.Equal(new Spi(5000), mnToHa);
        Assert.Equal(new Spi(5001), haToMn);
    }

    [Fact]
    public void CanInstall_MobileNodeAfterInit_MayReuseSpisOfGenerationsItWillDrop()
    {
        var table = new SpiTable(rememberRetired: false);
        using var ring = Ring(KeyRingSide.MobileNode, table);
        ring.InstallNext(Keys(1, 1000, 1001));
        ring.InstallNext(Keys(2, 1002, 1003));

        Assert.True(ring.CanInstall(new Spi(1002), new Spi(1000), afterInit: true));
        Assert.False(ring.CanInstall(new Spi(1002), new Spi(1004), afterInit: false));
        Assert.True(ring.CanInstall(new Spi(1000), new Spi(1004), afterInit: false));
        Assert.False(ring.CanInstall(new Spi(300), new Spi(1004), afterInit: true));
        Assert.False(ring.CanInstall(new Spi(100), new Spi(1004), afterInit: true));
    }

    private sealed class ScriptedSpiSource(params uint[] values) : ISpiSource
    {
        private int _next;

        public Spi NextCandidate() => new(values[_next++]);
    }
}
