using System.Diagnostics;
using Xunit.Abstractions;
using MipKeyAgent.Esp;

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
            byte[] mutant = Mutate(random, packet);
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
            byte[] mutant = Mutate(random, packet);
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
            byte[] mutant = Mutate(random, wrapped);
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
    public void PcapReader_MutatedFiles_NeverThrowOffsetsInside()
    {
        var random = new Random(1988);
        var bases = new List<byte[]>
        {
            Convert.FromHexString(PcapTests.PcapNgFile.Replace(" ", "", StringComparison.Ordinal)),
            Convert.FromHexString("a1b2c3d400020004000000000000000000" + "00ffff00000065" + "6553f1000001e2400000000400000006" + "60000000"),
            Convert.FromHexString("4d3cb2a1020004000000000000000000ffff000001000000" + "00f1536515cd5b070200000002000000abcd"),
            ClassicFile(),
        };

        int rejected = 0;
        int records = 0;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < Inputs; i++)
        {
            byte[] mutant = Mutate(random, bases[random.Next(bases.Count)]);
            using var stream = new MemoryStream(mutant);
            WireError error = PcapReader.TryOpen(stream, out PcapReader? reader);
            if (error.IsOk)
            {
                using (reader)
                {
                    for (int n = 0; n < 64; n++)
                    {
                        error = reader!.TryReadNext(out PcapRecord record, out bool end);
                        if (!error.IsOk || end)
                        {
                            break;
                        }

                        records++;
                        Assert.InRange(record.Data.Length, 0, mutant.Length);
                    }
                }
            }

            if (!error.IsOk)
            {
                rejected++;
                Assert.True(Enum.IsDefined(error.Kind));
                Assert.InRange(error.Offset, 0, mutant.Length);
            }
        }

        output.WriteLine($"mutation: PcapReader {Inputs} inputs, {rejected} rejected, {records} records read ({watch.ElapsedMilliseconds} ms)");
        Assert.InRange(rejected, 1, Inputs);
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
            byte[] mutant = Mutate(random, bases[random.Next(bases.Length)]);
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

    private static byte[] ClassicFile()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, PcapLinkType.Ethernet, leaveOpen: true))
        {
            writer.Write(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), Enumerable.Range(0, 30).Select(i => (byte)i).ToArray());
            writer.Write(DateTimeOffset.FromUnixTimeSeconds(1_700_000_001), Enumerable.Range(3, 7).Select(i => (byte)i).ToArray());
        }

        return stream.ToArray();
    }

    private static readonly uint[] InterestingWords = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0A0D0D0A, 0x1A2B3C4D, 12, 16, 28, 32];

    /// <summary>A copy of <paramref name="input"/> changed by one random operation, never equal to it.</summary>
    internal static byte[] Mutate(Random random, byte[] input)
    {
        while (true)
        {
            byte[] mutant = MutateOnce(random, input);
            if (!mutant.AsSpan().SequenceEqual(input))
            {
                return mutant;
            }
        }
    }

    private static byte[] MutateOnce(Random random, byte[] input)
    {
        var list = new List<byte>(input);
        switch (random.Next(8))
        {
            case 0: // flip bits
                for (int n = random.Next(1, 5); n > 0 && list.Count > 0; n--)
                {
                    int index = random.Next(list.Count);
                    list[index] ^= (byte)(1 << random.Next(8));
                }

                break;
            case 1: // overwrite octets
                for (int n = random.Next(1, 5); n > 0 && list.Count > 0; n--)
                {
                    list[random.Next(list.Count)] = (byte)random.Next(256);
                }

                break;
            case 2: // truncate
                list = list.GetRange(0, random.Next(list.Count));
                break;
            case 3: // extend
                for (int n = random.Next(1, 33); n > 0; n--)
                {
                    list.Add((byte)random.Next(256));
                }

                break;
            case 4: // insert
                {
                    int at = random.Next(list.Count + 1);
                    var extra = new byte[random.Next(1, 9)];
                    random.NextBytes(extra);
                    list.InsertRange(at, extra);
                    break;
                }

            case 5: // delete a range
                if (list.Count > 0)
                {
                    int at = random.Next(list.Count);
                    list.RemoveRange(at, random.Next(1, Math.Min(9, list.Count - at) + 1));
                }

                break;
            case 6: // random garbage of similar length
                {
                    var garbage = new byte[random.Next(input.Length + 17)];
                    random.NextBytes(garbage);
                    return garbage;
                }

            default: // an interesting 32-bit value at a 4-aligned offset, random byte order
                if (list.Count >= 4)
                {
                    int at = random.Next(list.Count / 4) * 4;
                    uint word = InterestingWords[random.Next(InterestingWords.Length)];
                    for (int k = 0; k < 4; k++)
                    {
                        int shift = random.Next(2) == 0 ? 8 * k : 8 * (3 - k);
                        list[at + k] = (byte)(word >> shift);
                    }
                }
                else
                {
                    list.Add(0);
                }

                break;
        }

        return [.. list];
    }
}
