using System.Buffers.Binary;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>A decrypted control datagram of the recorded exchange.</summary>
/// <param name="Target">The engine it was delivered to.</param>
/// <param name="Prefix">IPv6 header and extension headers up to the ESP header.</param>
/// <param name="Spi">The SPI it was sealed under.</param>
/// <param name="Plaintext">The ESP payload: the Mobility Header.</param>
/// <param name="PseudoSource">Checksum pseudo-header source (the home address for a BU).</param>
/// <param name="PseudoDestination">Checksum pseudo-header destination (the home address for a BA).</param>
internal sealed record ResealTemplate(FuzzTarget Target, byte[] Prefix, uint Spi, byte[] Plaintext, Ipv6Address PseudoSource, Ipv6Address PseudoDestination);

/// <summary>
/// Opens and seals control datagrams with a copy of the SA a receiving engine holds (derived
/// from the generation secret in its key ring, PROTOCOL.md section 3): the fuzzer's re-seal class
/// uses it to put a mutated Mobility Header behind a valid ICV and a fresh sequence number.
/// </summary>
internal static class Resealer
{
    /// <summary>The SA the engine <paramref name="target"/> opens control packets of <paramref name="keys"/> with.</summary>
    public static SecurityAssociation ReceiveSa(GenerationKeys keys, FuzzTarget target) =>
        target == FuzzTarget.HomeAgent ? keys.ControlMnToHa : keys.ControlHaToMn;

    /// <summary>Decrypts a recorded control datagram with the receiver's keys, or null (data, or keys not held).</summary>
    public static ResealTemplate? TryDecrypt(KeyRing ring, FuzzTarget target, byte[] datagram)
    {
        if (!Ipv6Datagram.TryParse(datagram, out var parsed).IsOk || parsed.UpperProtocol != IpProtocol.Esp
            || !SecurityAssociation.TryPeekSpi(parsed.GetUpper(datagram), out uint spi, out _).IsOk || !new Spi(spi).IsControl)
        {
            return null;
        }
        var keys = ring.All().FirstOrDefault(k => ReceiveSa(k, target).Spi == spi);
        if (keys is null)
        {
            return null;
        }
        using var mirror = Mirror(keys, target, 0);
        var plain = new byte[parsed.UpperLength];
        if (!mirror.Open(parsed.GetUpper(datagram), plain, out int length, out byte nextHeader).IsOk || nextHeader != IpProtocol.Mobility)
        {
            return null;
        }
        return new ResealTemplate(target, datagram[..parsed.UpperOffset], spi, plain[..length], parsed.PseudoHeaderSource, parsed.PseudoHeaderDestination);
    }

    /// <summary>
    /// <paramref name="mh"/> sealed (next header <paramref name="nextHeader"/>, sequence number
    /// <paramref name="sequence"/>) under the control SA of <paramref name="keys"/> that
    /// <paramref name="target"/> receives with, behind <paramref name="prefix"/> (payload length fixed).
    /// </summary>
    public static byte[] Seal(GenerationKeys keys, FuzzTarget target, byte[] prefix, byte nextHeader, ReadOnlySpan<byte> mh, uint sequence)
    {
        using var mirror = Mirror(keys, target, sequence - 1);
        var datagram = new byte[prefix.Length + mirror.SealedLength(mh.Length)];
        prefix.CopyTo(datagram, 0);
        if (!mirror.Seal(nextHeader, mh, datagram.AsSpan(prefix.Length), out _).IsOk)
        {
            throw new InvalidOperationException("re-seal failed");
        }
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), (ushort)Math.Min(ushort.MaxValue, datagram.Length - Ipv6Header.Length));
        return datagram;
    }

    private static SecurityAssociation Mirror(GenerationKeys keys, FuzzTarget target, uint lastSequenceSent)
    {
        var direction = target == FuzzTarget.HomeAgent ? KeyDirection.MnToHa : KeyDirection.HaToMn;
        uint spi = ReceiveSa(keys, target).Spi;
        Span<byte> material = stackalloc byte[KeyLengths.MaxKeyMaterial];
        material = material[..EspSuites.KeyMaterialLength(keys.Suite)];
        try
        {
            KeyDerivation.DeriveControlKeyMaterial(keys.Secret, direction, spi, keys.Suite, material);
            return new SecurityAssociation(spi, keys.Suite, material, lastSequenceSent: lastSequenceSent);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(material);
        }
    }
}
