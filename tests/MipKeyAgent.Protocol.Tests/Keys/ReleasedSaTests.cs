using System.Reflection;

namespace MipKeyAgent.Protocol.Tests.Keys;

/// <summary>
/// The HA releases IK's receiving control SA once a dynamic generation is confirmed (memory per binding,
/// docs/benchmarks.md): released SAs are zeroed, a rebuilt one continues from the kept right edge
/// (nothing seen before the release opens again), and an SA that sealed anything is never released.
/// </summary>
public sealed class ReleasedSaTests
{
    private static readonly DateTimeOffset Start = TestTime.Start;
    private static readonly byte[] Secret = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];

    private static GenerationKeys Keys() =>
        GenerationKeys.Create(Generation.Initialization, Secret, new Spi(1000), new Spi(1001), EspSuite.AesGcm256, Start);

    private static byte[] Seal(SecurityAssociation sa)
    {
        var payload = new byte[] { 1, 2, 3, 4 };
        var packet = new byte[sa.SealedLength(payload.Length)];
        Assert.True(sa.Seal(IpProtocol.Mobility, payload, packet, out int written).IsOk);
        Assert.Equal(packet.Length, written);
        return packet;
    }

    private static WireErrorKind Open(SecurityAssociation sa, byte[] packet) =>
        sa.Open(packet, new byte[64], out _, out _).Kind;

    private static bool KeyMaterialIsZeroed(SecurityAssociation sa) =>
        (bool)typeof(SecurityAssociation).GetMethod("KeyMaterialIsZeroed", BindingFlags.NonPublic | BindingFlags.Instance)!.Invoke(sa, null)!;

    [Fact]
    public void ReleaseControlReceive_OpenedSa_ZeroedAndRebuiltFromTheKeptEdge()
    {
        using var node = Keys();
        using var homeAgent = Keys();
        var packets = Enumerable.Range(0, 5).Select(_ => Seal(node.ControlMnToHa)).ToArray();
        var opened = homeAgent.ControlMnToHa;
        Assert.Equal(WireErrorKind.None, Open(opened, packets[2]));
        Assert.Equal(WireErrorKind.None, Open(opened, packets[0]));

        Assert.True(homeAgent.ReleaseControlReceive(KeyRingSide.HomeAgent));

        Assert.False(homeAgent.IsBuilt(KeyDirection.MnToHa, data: false));
        Assert.True(KeyMaterialIsZeroed(opened));
        Assert.Throws<ObjectDisposedException>(() => opened.Open(packets[3], new byte[64], out _, out _));
        Assert.False(homeAgent.SecretIsZeroed());

        var rebuilt = homeAgent.ControlMnToHa;
        Assert.NotSame(opened, rebuilt);
        Assert.Equal(3u, rebuilt.ReplayRightEdge);
        // Seen before the release: still replays.
        Assert.Equal(WireErrorKind.Replay, Open(rebuilt, packets[2]));
        Assert.Equal(WireErrorKind.Replay, Open(rebuilt, packets[0]));
        // Below the kept edge but never seen: treated as seen, as after a restart (no bitmap kept).
        Assert.Equal(WireErrorKind.Replay, Open(rebuilt, packets[1]));
        // Above the edge: opens with the re-derived key.
        Assert.Equal(WireErrorKind.None, Open(rebuilt, packets[3]));
        Assert.Equal(WireErrorKind.None, Open(rebuilt, packets[4]));
        Assert.Equal(WireErrorKind.Replay, Open(rebuilt, packets[4]));
    }

    [Fact]
    public void ReleaseControlReceive_DataSaKeptAndUnbuiltControlSaNotBuilt()
    {
        using var node = Keys();
        using var homeAgent = Keys();
        var data = new[] { Seal(node.DataMnToHa), Seal(node.DataMnToHa) };
        var dataSa = homeAgent.DataMnToHa;
        Assert.Equal(WireErrorKind.None, Open(dataSa, data[1]));

        Assert.False(homeAgent.ReleaseControlReceive(KeyRingSide.HomeAgent));

        Assert.False(homeAgent.IsBuilt(KeyDirection.MnToHa, data: false));
        Assert.Same(dataSa, homeAgent.DataMnToHa);
        // The data window keeps its bitmap: a packet delayed behind a later one still opens once.
        Assert.Equal(WireErrorKind.None, Open(dataSa, data[0]));
        Assert.Equal(WireErrorKind.Replay, Open(dataSa, data[0]));
    }

    [Fact]
    public void ReleaseControlReceive_SaThatSealed_KeptSoItsSequenceNumbersNeverRepeat()
    {
        using var node = Keys();
        var sealer = node.ControlMnToHa;
        Seal(sealer);
        Seal(sealer);

        // The node's MN->HA SA is its transmit SA: it sealed, so releasing it would restart its counter.
        Assert.False(node.ReleaseControlReceive(KeyRingSide.HomeAgent));

        Assert.Same(sealer, node.ControlMnToHa);
        Assert.Equal(2u, sealer.LastSequenceSent);
        var third = Seal(node.ControlMnToHa);
        Assert.True(SecurityAssociation.TryPeekSpi(third, out _, out uint sequence).IsOk);
        Assert.Equal(3u, sequence);
    }

    [Fact]
    public void ReleaseControlReceive_Disposed_NothingReleased()
    {
        var keys = Keys();
        _ = keys.ControlMnToHa;
        keys.Dispose();

        Assert.False(keys.ReleaseControlReceive(KeyRingSide.HomeAgent));
        Assert.True(keys.SecretIsZeroed());
    }
}
