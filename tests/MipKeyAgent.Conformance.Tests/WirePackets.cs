using System.Buffers.Binary;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance.Tests;

/// <summary>
/// Builds and opens ESP-protected BU/BA datagrams with our Wire codecs alone, laid out as
/// PROTOCOL.md section 2 says: IPv6 / DestOpt{HAO} / ESP / MH BU and IPv6 / RH2 / ESP / MH BA.
/// </summary>
internal static class WirePackets
{
    public static readonly Ipv6Address HomeAgent = Ipv6Address.Parse("2001:db8:1::1");
    public static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:1::100");
    public static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:2::100");

    public static byte[] KeyMaterial(EspSuite suite, byte start)
    {
        var key = new byte[EspSuites.KeyMaterialLength(suite)];
        for (var i = 0; i < key.Length; i++)
        {
            key[i] = (byte)(start + i);
        }
        return key;
    }

    public static byte[] BindingUpdate(SecurityAssociation sa, ushort sequence, OptionWriter options)
    {
        Span<byte> mh = stackalloc byte[512];
        var writer = new MobilityHeaderWriter(mh);
        writer.BeginBindingUpdate(sequence, BindingUpdateFlags.Acknowledge | BindingUpdateFlags.HomeRegistration, 100);
        options(ref writer);
        var mhLength = writer.Finish();
        MobilityHeader.WriteChecksum(mh[..mhLength], HomeAddress, HomeAgent);
        return Protect(sa, mh[..mhLength], CareOf, HomeAgent, isBindingUpdate: true);
    }

    public static byte[] BindingAcknowledgement(SecurityAssociation sa, ushort sequence, OptionWriter options)
    {
        Span<byte> mh = stackalloc byte[512];
        var writer = new MobilityHeaderWriter(mh);
        writer.BeginBindingAcknowledgement(BindingAckStatus.Accepted, 0, sequence, 100);
        options(ref writer);
        var mhLength = writer.Finish();
        MobilityHeader.WriteChecksum(mh[..mhLength], HomeAgent, HomeAddress);
        return Protect(sa, mh[..mhLength], HomeAgent, CareOf, isBindingUpdate: false);
    }

    private static byte[] Protect(SecurityAssociation sa, ReadOnlySpan<byte> mh, Ipv6Address src, Ipv6Address dst, bool isBindingUpdate)
    {
        var espLength = sa.SealedLength(mh.Length);
        var datagram = new byte[Ipv6Header.Length + 24 + espLength];
        var ext = datagram.AsSpan(Ipv6Header.Length);
        var extLength = isBindingUpdate
            ? ExtensionHeaders.WriteHomeAddressOption(ext, IpProtocol.Esp, HomeAddress)
            : ExtensionHeaders.WriteRoutingType2(ext, IpProtocol.Esp, HomeAddress);
        var error = sa.Seal(IpProtocol.Mobility, mh, ext[extLength..], out var written);
        Assert.True(error.IsOk, error.ToString());
        var header = new Ipv6Header(
            trafficClass: 0, flowLabel: 0, payloadLength: (ushort)(extLength + written),
            nextHeader: isBindingUpdate ? IpProtocol.DestinationOptions : IpProtocol.Routing,
            hopLimit: 64, source: src, destination: dst);
        header.WriteTo(datagram);
        return datagram[..(Ipv6Header.Length + extLength + written)];
    }

    /// <summary>Decrypts a protected datagram with <paramref name="sa"/>; returns the Mobility Header bytes.</summary>
    public static byte[] OpenMobilityHeader(byte[] datagram, SecurityAssociation sa, out Ipv6Datagram parsed)
    {
        var error = Ipv6Datagram.TryParse(datagram, out parsed);
        Assert.True(error.IsOk, error.ToString());
        Assert.Equal(IpProtocol.Esp, parsed.UpperProtocol);
        var plain = new byte[datagram.Length];
        error = sa.Open(datagram.AsSpan(parsed.UpperOffset, parsed.UpperLength), plain, out var length, out var nextHeader);
        Assert.True(error.IsOk, error.ToString());
        Assert.Equal(IpProtocol.Mobility, nextHeader);
        return plain[..length];
    }

    public static uint ReadUInt32(ReadOnlySpan<byte> span, int offset) => BinaryPrimitives.ReadUInt32BigEndian(span[offset..]);
}

/// <summary>Adds options to a writer that lives on the caller's stack.</summary>
internal delegate void OptionWriter(ref MobilityHeaderWriter writer);
