using MipKeyAgent.Wire;

namespace MipKeyAgent.Esp.Tests;

/// <summary>
/// Suite 2 builds the CBC transform of a direction at that direction's first use: an SA carries one
/// direction of a node's traffic, so a new generation's sender builds only an encryptor and its
/// receiver only a decryptor (a rekey builds two native CBC contexts per side instead of four). A forged
/// packet builds none; an SA used both ways computes what it computed with both built at once.
/// </summary>
public sealed class CbcTransformTests
{
    private const EspSuite Suite = EspSuite.AesCbc128HmacSha256;

    private static byte[] Material()
    {
        var material = new byte[EspSuites.KeyMaterialLength(Suite)];
        for (int i = 0; i < material.Length; i++)
        {
            material[i] = (byte)(3 + 11 * i);
        }
        return material;
    }

    private static byte[] Seal(SecurityAssociation sa, byte fill)
    {
        var payload = new byte[48];
        payload.AsSpan().Fill(fill);
        var packet = new byte[sa.SealedLength(payload.Length)];
        Assert.True(sa.Seal(59, payload, packet, out _).IsOk);
        return packet;
    }

    [Fact]
    public void Sender_BuildsOnlyTheEncryptor_Receiver_OnlyTheDecryptor()
    {
        using var sender = new SecurityAssociation(400, Suite, Material());
        using var receiver = new SecurityAssociation(400, Suite, Material());
        Assert.Equal((false, false), sender.CbcTransforms);

        for (byte round = 1; round <= 3; round++)
        {
            var packet = Seal(sender, round);
            var payload = new byte[64];
            Assert.True(receiver.Open(packet, payload, out int length, out _).IsOk);
            Assert.Equal(48, length);
            Assert.All(payload[..length], b => Assert.Equal(round, b));
        }

        Assert.Equal((true, false), sender.CbcTransforms);
        Assert.Equal((false, true), receiver.CbcTransforms);
    }

    [Fact]
    public void ForgedPacket_BuildsNoDecryptor()
    {
        using var sender = new SecurityAssociation(400, Suite, Material());
        using var receiver = new SecurityAssociation(400, Suite, Material());
        var packet = Seal(sender, 7);
        packet[^1] ^= 1;

        Assert.Equal(WireErrorKind.AuthenticationFailed, receiver.Open(packet, new byte[64], out _, out _).Kind);
        Assert.Equal((false, false), receiver.CbcTransforms);
    }

    [Fact]
    public void SaUsedBothWays_SealsAndOpensAsBefore()
    {
        // One SA sealing and opening in turn (a loopback): its chain is its encryptor's alone.
        using var both = new SecurityAssociation(400, Suite, Material());
        using var reference = new SecurityAssociation(400, Suite, Material());
        for (byte round = 1; round <= 4; round++)
        {
            var packet = Seal(both, round);
            Assert.Equal(Seal(reference, round), packet);
            var payload = new byte[64];
            Assert.True(both.Open(packet, payload, out int length, out _).IsOk);
            Assert.All(payload[..length], b => Assert.Equal(round, b));
        }
        Assert.Equal((true, true), both.CbcTransforms);
    }
}
