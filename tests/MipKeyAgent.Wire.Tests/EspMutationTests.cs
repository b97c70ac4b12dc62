using System.Diagnostics;
using Xunit.Abstractions;
using MipKeyAgent.Esp;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.Wire.Tests;

/// <summary>
/// Seeded random mutation of valid inputs into every entry point of the ESP, key-wrap, capture
/// and Ethernet code: none may throw, every failure is a defined kind with an offset inside the
/// input, and no mutant of an authenticated input may be accepted.
/// </summary>
public sealed class EspMutationTests(ITestOutputHelper output)
{
    private const int Inputs = 100_000;

    [Fact]
    public void Open_MutatedPackets_AllRejectedTyped()
    {
        var random = new Random(4303);
        var bases = new List<(SecurityAssociation Receiver, byte[] Packet)>();
        foreach (EspSuite suite in new[] { EspSuite.AesGcm256, EspSuite.AesCbc128HmacSha256 })
        {
            byte[] km = Enumerable.Range(11, EspSuites.KeyMaterialLength(suite)).Select(i => (byte)i).ToArray();
            var tx = new SecurityAssociation(0x100, suite, km);
            var rx = new SecurityAssociation(0x100, suite, km);
            foreach (int length in new[] { 0, 1, 13, 100, 600 })
            {
                var packet = new byte[tx.SealedLength(length)];
                Assert.True(tx.Seal(135, Enumerable.Range(length, length).Select(i => (byte)i).ToArray(), packet, out _).IsOk);
                bases.Add((rx, packet));
            }
        }

        var destination = new byte[2048];
        int rejected = 0;
        var kinds = new SortedDictionary<WireErrorKind, int>();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < Inputs; i++)
        {
            (SecurityAssociation rx, byte[] packet) = bases[random.Next(bases.Count)];
            byte[] mutant = Mutation.Mutate(random, packet);
            WireError error = rx.Open(mutant, destination, out int payloadLength, out _);
            Assert.False(error.IsOk, "a mutant of an authenticated packet was accepted");
            Assert.Contains(error.Kind, new[] { WireErrorKind.Truncated, WireErrorKind.BadLength, WireErrorKind.UnknownSpi, WireErrorKind.Replay, WireErrorKind.AuthenticationFailed });
            Assert.InRange(error.Offset, 0, mutant.Length);
            Assert.Equal(0, payloadLength);
            rejected++;
            kinds[error.Kind] = kinds.GetValueOrDefault(error.Kind) + 1;
        }

        output.WriteLine($"mutation: SecurityAssociation.Open {Inputs} inputs, {rejected} rejected ({watch.ElapsedMilliseconds} ms; {string.Join(", ", kinds.Select(k => $"{k.Key} {k.Value}"))})");
        Assert.True(kinds.GetValueOrDefault(WireErrorKind.AuthenticationFailed) > Inputs / 10, "too few mutants reached the ICV check");
        foreach ((SecurityAssociation rx, _) in bases)
        {
            Assert.Equal(0u, rx.ReplayWindow.RightEdge);
        }
    }

    [Fact]
    public void TryPeekSpi_MutatedPackets_NeverThrowOffsetsInside()
    {
        var random = new Random(4304);
        byte[] packet = Convert.FromHexString("0000010000000001894e24d01af0f63a");
        int rejected = 0;
        for (int i = 0; i < Inputs; i++)
        {
            byte[] mutant = Mutation.Mutate(random, packet);
            WireError error = SecurityAssociation.TryPeekSpi(mutant, out uint spi, out _);
            if (error.IsOk)
            {
                Assert.NotEqual(0u, spi);
                continue;
            }

            rejected++;
            Assert.Contains(error.Kind, new[] { WireErrorKind.Truncated, WireErrorKind.BadValue });
            Assert.InRange(error.Offset, 0, mutant.Length);
        }

        output.WriteLine($"mutation: SecurityAssociation.TryPeekSpi {Inputs} inputs, {rejected} rejected");
    }

    [Fact]
    public void TryUnwrap_MutatedWrappedKeys_AllRejectedTyped()
    {
        var random = new Random(5649);
        byte[] kek = Enumerable.Range(0x20, 32).Select(i => (byte)i).ToArray();
        byte[] wrapped = Convert.FromHexString("805c63d0b031c90f180b5b2d382ca26a1aecb3e29c59aed8b0684d8bc92343773ae4e2a79b0c6a7b");
        var destination = new byte[256];
        int rejected = 0;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < Inputs; i++)
        {
            byte[] mutant = Mutation.Mutate(random, wrapped);
            WireError error = KeyWrap.TryUnwrap(kek, mutant, destination, out int written);
            Assert.False(error.IsOk, "a mutant of a wrapped key was accepted");
            Assert.Contains(error.Kind, new[] { WireErrorKind.Truncated, WireErrorKind.BadLength, WireErrorKind.AuthenticationFailed });
            Assert.InRange(error.Offset, 0, mutant.Length);
            Assert.Equal(0, written);
            rejected++;
        }

        output.WriteLine($"mutation: KeyWrap.TryUnwrap {Inputs} inputs, {rejected} rejected ({watch.ElapsedMilliseconds} ms)");
    }

    [Fact]
    public void EthernetTryGetIpv6_MutatedFrames_NeverThrowOffsetsInside()
    {
        var random = new Random(2464);
        var bases = new[]
        {
            Convert.FromHexString("02000000000102000000000286dd6000000000003b40"),
            Convert.FromHexString("0200000000010200000000028100006486dd60000000"),
            Convert.FromHexString("02000000000102000000000288a800018100006486dd60"),
        };
        int rejected = 0;
        for (int i = 0; i < Inputs; i++)
        {
            byte[] mutant = Mutation.Mutate(random, bases[random.Next(bases.Length)]);
            WireError error = Ethernet.TryGetIpv6(mutant, out int offset);
            if (error.IsOk)
            {
                Assert.InRange(offset, Ethernet.HeaderLength, mutant.Length);
                continue;
            }

            rejected++;
            Assert.Contains(error.Kind, new[] { WireErrorKind.Truncated, WireErrorKind.Unsupported });
            Assert.InRange(error.Offset, 0, mutant.Length);
        }

        output.WriteLine($"mutation: Ethernet.TryGetIpv6 {Inputs} inputs, {rejected} rejected");
    }
}
