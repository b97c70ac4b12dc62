using System.Buffers.Binary;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Esp.Tests;

public sealed class EspTests
{
    private const uint Spi = 0x100;

    // Key material 0x40, 0x41, ... (36 or 48 octets). The expected packets below were computed
    // independently with Python's `cryptography` (AESGCM; AES-ECB/CBC + hmac/SHA-256), following
    // RFC 4303 / 4106 / 3602 / 4868 and the CBC IV rule documented on SecurityAssociation.
    private static readonly byte[] GcmKeyMaterial = Sequence(0x40, 36);
    private static readonly byte[] CbcKeyMaterial = Sequence(0x40, 48);

    // SPI 0x100, seq 1, IV 0000000000000001, payload 00..0c, pad 01, pad length 01, next header 135.
    private const string GcmSeq1 =
        "00000100" + "00000001" + "0000000000000001" +
        "5764f565c59aea248d72f56c8482d325" + "9f94672af71ef89bfeea23bb789bbb6f";

    // seq 2, empty payload, pad 01 02, pad length 02, next header 59.
    private const string GcmSeq2 =
        "00000100" + "00000002" + "0000000000000002" + "bf7c3377" + "d2f52c1b9ddc41e6a838b8521f47f531";

    // seq 1, payload 00..13 (20 octets), pad 01..0a, pad length 0a, next header 135.
    private const string CbcSeq1 =
        "00000100" + "00000001" + "894e24d01af0f63a0fc9cd7c5cd4e30f" +
        "12eab20ec2f4612acdc20352e9acdb72402a084cdd7bfefbfa8b7c36a8ec15b0" + "37c3e9bb51c70ad81547844f46056dcd";

    // seq 2, empty payload, pad 01..0e, next header 59.
    private const string CbcSeq2 =
        "00000100" + "00000002" + "8cd90885fc0f263e8aa2f5f9008ed18d" +
        "2cd68edfaf355e7e7f087f64b5ca2cd3" + "b53207fcac8b2a3afeb7f15878707483";

    // seq 3, payload 64..84 (33 octets), pad 01..0d, next header 41.
    private const string CbcSeq3 =
        "00000100" + "00000003" + "efa5a627e3966c314989b1562239d376" +
        "a346220eb2f2efe6bed3a06916569c211fd8a054b5a1e3dad72e49b3522a586e3fa234468d1fdb6648ddb6b3e20d6cd8" +
        "c33bfe646e90e86657a064e4231ec7de";

    // Authentic packets (valid tag/ICV) whose padding is wrong, also computed with Python:
    // GCM seq 1, payload 00..0c, pad octet 02 instead of 01 (ESP offset 29).
    private const string GcmBadPadOctet =
        "00000100000000010000000000000001" + "5764f565c59aea248d72f56c8481d325" + "ae1b396e060497b4f2c88081cc5b534e";

    // CBC seq 1, 16-octet ciphertext whose pad length is 0xff (ESP offset 38).
    private const string CbcBadPadLength =
        "0000010000000001894e24d01af0f63a0fc9cd7c5cd4e30f" + "b044ef7ca0aa5964d4f18427524dbae5" + "8009a9a1e83af9bdbc87b0b5ba9bdbca";

    public static TheoryData<EspSuite> Suites => new() { EspSuite.AesGcm256, EspSuite.AesCbc128HmacSha256 };

    [Fact]
    public void Seal_GcmFirstPackets_MatchIndependentBytes()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AesGcm256, GcmKeyMaterial);
        Assert.Equal(GcmSeq1, SealHex(sa, 135, Sequence(0, 13)));
        Assert.Equal(GcmSeq2, SealHex(sa, 59, []));
        Assert.Equal(2u, sa.LastSequenceSent);
    }

    [Fact]
    public void Seal_CbcFirstPackets_MatchIndependentBytes()
    {
        // Three packets in a row also prove the reused CBC transform's chaining is undone.
        using var sa = new SecurityAssociation(Spi, EspSuite.AesCbc128HmacSha256, CbcKeyMaterial);
        Assert.Equal(CbcSeq1, SealHex(sa, 135, Sequence(0, 20)));
        Assert.Equal(CbcSeq2, SealHex(sa, 59, []));
        Assert.Equal(CbcSeq3, SealHex(sa, 41, Sequence(100, 33)));
    }

    [Fact]
    public void Open_IndependentGcmPackets_RecoverPayloadAndNextHeader()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AesGcm256, GcmKeyMaterial);
        AssertOpens(sa, GcmSeq2, 59, []);
        AssertOpens(sa, GcmSeq1, 135, Sequence(0, 13));
        Assert.Equal(2u, sa.ReplayWindow.RightEdge);
    }

    [Fact]
    public void Open_IndependentCbcPackets_RecoverPayloadAndNextHeader()
    {
        using var sa = new SecurityAssociation(Spi, EspSuite.AesCbc128HmacSha256, CbcKeyMaterial);
        AssertOpens(sa, CbcSeq3, 41, Sequence(100, 33));
        AssertOpens(sa, CbcSeq1, 135, Sequence(0, 20));
        AssertOpens(sa, CbcSeq2, 59, []);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void SealThenOpen_AllPayloadLengths_RoundTripWithMinimalAlignedPadding(EspSuite suite)
    {
        byte[] km = Sequence(7, EspSuites.KeyMaterialLength(suite));
        using var tx = new SecurityAssociation(0x1234, suite, km);
        using var rx = new SecurityAssociation(0x1234, suite, km);
        int align = suite == EspSuite.AesGcm256 ? 4 : 16;
        int iv = suite == EspSuite.AesGcm256 ? 8 : 16;
        var buffer = new byte[2000];
        var opened = new byte[2000];
        for (int length = 0; length <= 300; length++)
        {
            byte[] payload = Sequence((byte)length, length);
            Assert.True(tx.Seal(6, payload, buffer, out int written).IsOk);
            Assert.Equal(tx.SealedLength(length), written);
            int ciphertext = written - 8 - iv - 16;
            Assert.Equal(0, ciphertext % align);
            Assert.InRange(ciphertext - length - 2, 0, align - 1);
            Assert.Equal((uint)(length + 1), BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(4)));

            WireError error = rx.Open(buffer.AsSpan(0, written), opened, out int payloadLength, out byte nextHeader);
            Assert.Equal(WireError.None, error);
            Assert.Equal(6, nextHeader);
            Assert.Equal(payload, opened.AsSpan(0, payloadLength).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void Seal_PayloadInsideDestination_SealsCorrectly(EspSuite suite)
    {
        byte[] km = Sequence(9, EspSuites.KeyMaterialLength(suite));
        using var tx = new SecurityAssociation(Spi, suite, km);
        using var rx = new SecurityAssociation(Spi, suite, km);
        byte[] payload = Sequence(1, 40);
        var buffer = new byte[200];
        payload.CopyTo(buffer, 0);
        Assert.True(tx.Seal(17, buffer.AsSpan(0, 40), buffer, out int written).IsOk);
        var opened = new byte[100];
        Assert.True(rx.Open(buffer.AsSpan(0, written), opened, out int length, out _).IsOk);
        Assert.Equal(payload, opened.AsSpan(0, length).ToArray());
    }

    [Fact]
    public void Overhead_FixedPayloads_MatchLayoutArithmetic()
    {
        Assert.Equal(36, EspSuites.KeyMaterialLength(EspSuite.AesGcm256));
        Assert.Equal(48, EspSuites.KeyMaterialLength(EspSuite.AesCbc128HmacSha256));
        Assert.Equal(48, EspSuites.SealedLength(EspSuite.AesGcm256, 13));        // 8 + 8 + 16 + 16
        Assert.Equal(35, EspSuites.Overhead(EspSuite.AesGcm256, 13));
        Assert.Equal(72, EspSuites.SealedLength(EspSuite.AesCbc128HmacSha256, 20)); // 8 + 16 + 32 + 16
        Assert.Equal(52, EspSuites.Overhead(EspSuite.AesCbc128HmacSha256, 20));
        Assert.Equal(36, EspSuites.SealedLength(EspSuite.AesGcm256, 0));
        Assert.Equal(56, EspSuites.SealedLength(EspSuite.AesCbc128HmacSha256, 0));
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, GcmSeq1)]
    [InlineData(EspSuite.AesCbc128HmacSha256, CbcSeq1)]
    public void Open_TamperedIcv_AuthenticationFailedWindowUnmoved(EspSuite suite, string hex)
    {
        using var sa = Receiver(suite);
        byte[] packet = Convert.FromHexString(hex);
        packet[^1] ^= 0x01;
        AssertError(sa, packet, WireErrorKind.AuthenticationFailed, packet.Length - 16);
        Assert.Equal(0u, sa.ReplayWindow.RightEdge);

        packet[^1] ^= 0x01;
        Assert.True(sa.Open(packet, new byte[64], out _, out _).IsOk);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, GcmSeq1)]
    [InlineData(EspSuite.AesCbc128HmacSha256, CbcSeq1)]
    public void Open_TamperedCiphertextOrIv_AuthenticationFailed(EspSuite suite, string hex)
    {
        using var sa = Receiver(suite);
        byte[] packet = Convert.FromHexString(hex);
        packet[10] ^= 0x80; // inside the IV
        AssertError(sa, packet, WireErrorKind.AuthenticationFailed, packet.Length - 16);
        packet[10] ^= 0x80;
        packet[30] ^= 0x04; // inside the ciphertext
        AssertError(sa, packet, WireErrorKind.AuthenticationFailed, packet.Length - 16);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, GcmSeq1)]
    [InlineData(EspSuite.AesCbc128HmacSha256, CbcSeq1)]
    public void Open_OtherSpi_UnknownSpiAtOffsetZero(EspSuite suite, string hex)
    {
        byte[] km = suite == EspSuite.AesGcm256 ? GcmKeyMaterial : CbcKeyMaterial;
        using var sa = new SecurityAssociation(Spi + 1, suite, km);
        AssertError(sa, Convert.FromHexString(hex), WireErrorKind.UnknownSpi, 0);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, GcmSeq1)]
    [InlineData(EspSuite.AesCbc128HmacSha256, CbcSeq1)]
    public void Open_SamePacketTwice_SecondIsReplayAtSequenceOffset(EspSuite suite, string hex)
    {
        using var sa = Receiver(suite);
        byte[] packet = Convert.FromHexString(hex);
        Assert.True(sa.Open(packet, new byte[64], out _, out _).IsOk);
        AssertError(sa, packet, WireErrorKind.Replay, 4);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void Open_LeftOfWindow_ReplayButInsideWindowAccepted(EspSuite suite)
    {
        byte[] km = Sequence(3, EspSuites.KeyMaterialLength(suite));
        using var tx = new SecurityAssociation(Spi, suite, km);
        using var rx = new SecurityAssociation(Spi, suite, km);
        var packets = new List<byte[]>();
        for (int i = 0; i < 100; i++)
        {
            var buffer = new byte[tx.SealedLength(10)];
            Assert.True(tx.Seal(59, new byte[10], buffer, out _).IsOk);
            packets.Add(buffer);
        }

        Assert.True(rx.Open(packets[99], new byte[16], out _, out _).IsOk); // seq 100
        AssertError(rx, packets[35], WireErrorKind.Replay, 4);                // seq 36: 64 behind
        Assert.True(rx.Open(packets[36], new byte[16], out _, out _).IsOk);  // seq 37: 63 behind
        AssertError(rx, packets[36], WireErrorKind.Replay, 4);
    }

    [Fact]
    public void Open_GcmAuthenticPaddingWrong_BadPaddingAtPadOctet()
    {
        using var sa = Receiver(EspSuite.AesGcm256);
        byte[] packet = Convert.FromHexString(GcmBadPadOctet);
        AssertError(sa, packet, WireErrorKind.BadPadding, 29);
        Assert.Equal(0u, sa.ReplayWindow.RightEdge);
    }

    [Fact]
    public void Open_CbcAuthenticPadLengthTooLarge_BadPaddingAtPadLength()
    {
        using var sa = Receiver(EspSuite.AesCbc128HmacSha256);
        AssertError(sa, Convert.FromHexString(CbcBadPadLength), WireErrorKind.BadPadding, 38);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, GcmSeq1)]
    [InlineData(EspSuite.AesCbc128HmacSha256, CbcSeq1)]
    public void Open_TruncatedPackets_TruncatedAtInputEnd(EspSuite suite, string hex)
    {
        using var sa = Receiver(suite);
        byte[] packet = Convert.FromHexString(hex);
        AssertError(sa, packet[..7], WireErrorKind.Truncated, 7);
        int minimum = suite == EspSuite.AesGcm256 ? 8 + 8 + 4 + 16 : 8 + 16 + 16 + 16;
        AssertError(sa, packet[..(minimum - 1)], WireErrorKind.Truncated, minimum - 1);
    }

    [Fact]
    public void Open_CbcCiphertextNotBlockAligned_BadLength()
    {
        using var sa = Receiver(EspSuite.AesCbc128HmacSha256);
        byte[] packet = Convert.FromHexString(CbcSeq1);
        AssertError(sa, packet[..^4], WireErrorKind.BadLength, 24);
    }

    [Fact]
    public void Open_GcmCiphertextNotFourAligned_BadLength()
    {
        using var sa = Receiver(EspSuite.AesGcm256);
        byte[] packet = Convert.FromHexString(GcmSeq1);
        AssertError(sa, packet[..^1], WireErrorKind.BadLength, 16);
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, GcmSeq1)]
    [InlineData(EspSuite.AesCbc128HmacSha256, CbcSeq1)]
    public void Open_DestinationTooSmall_BufferTooSmallAndRetrySucceeds(EspSuite suite, string hex)
    {
        using var sa = Receiver(suite);
        byte[] packet = Convert.FromHexString(hex);
        int payload = suite == EspSuite.AesGcm256 ? 13 : 20;
        WireError error = sa.Open(packet, new byte[payload - 1], out _, out _);
        Assert.Equal(WireErrorKind.BufferTooSmall, error.Kind);
        Assert.Equal(0u, sa.ReplayWindow.RightEdge);
        Assert.True(sa.Open(packet, new byte[payload], out int length, out _).IsOk);
        Assert.Equal(payload, length);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void Seal_CounterAtMaximum_SequenceExhausted(EspSuite suite)
    {
        using var sa = new SecurityAssociation(Spi, suite, new byte[EspSuites.KeyMaterialLength(suite)], lastSequenceSent: uint.MaxValue - 1);
        var buffer = new byte[100];
        Assert.True(sa.Seal(59, [], buffer, out _).IsOk);
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(4)));
        WireError error = sa.Seal(59, [], buffer, out int written);
        Assert.Equal(WireErrorKind.SequenceExhausted, error.Kind);
        Assert.Equal(0, written);
        Assert.Equal(uint.MaxValue, sa.LastSequenceSent);
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void Seal_DestinationTooSmall_BufferTooSmallWithoutUsingASequenceNumber(EspSuite suite)
    {
        using var sa = new SecurityAssociation(Spi, suite, new byte[EspSuites.KeyMaterialLength(suite)]);
        var buffer = new byte[sa.SealedLength(10)];
        Assert.Equal(WireErrorKind.BufferTooSmall, sa.Seal(59, new byte[10], buffer.AsSpan(0, buffer.Length - 1), out _).Kind);
        Assert.Equal(0u, sa.LastSequenceSent);
        Assert.True(sa.Seal(59, new byte[10], buffer, out _).IsOk);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(4)));
    }

    [Fact]
    public void TryPeekSpi_Packet_ReadsSpiAndSequence()
    {
        Assert.True(SecurityAssociation.TryPeekSpi(Convert.FromHexString(CbcSeq3), out uint spi, out uint sequence).IsOk);
        Assert.Equal(Spi, spi);
        Assert.Equal(3u, sequence);
    }

    [Fact]
    public void TryPeekSpi_ShortOrZeroSpi_TypedErrors()
    {
        WireError error = SecurityAssociation.TryPeekSpi(new byte[7], out _, out _);
        Assert.Equal(new WireError(WireErrorKind.Truncated, 7, error.What), error);
        error = SecurityAssociation.TryPeekSpi(Convert.FromHexString("0000000000000001"), out _, out _);
        Assert.Equal(WireErrorKind.BadValue, error.Kind);
        Assert.Equal(0, error.Offset);
    }

    [Fact]
    public void Constructor_WrongKeyLengthOrReservedSpi_Throws()
    {
        Assert.Throws<ArgumentException>(() => new SecurityAssociation(Spi, EspSuite.AesGcm256, new byte[48]));
        Assert.Throws<ArgumentException>(() => new SecurityAssociation(Spi, EspSuite.AesCbc128HmacSha256, new byte[36]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SecurityAssociation(255, EspSuite.AesGcm256, new byte[36]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SecurityAssociation(Spi, (EspSuite)4, new byte[36]));
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void Dispose_ThenSeal_ThrowsObjectDisposed(EspSuite suite)
    {
        var sa = new SecurityAssociation(Spi, suite, new byte[EspSuites.KeyMaterialLength(suite)]);
        sa.Dispose();
        sa.Dispose();
        Assert.Throws<ObjectDisposedException>(() => sa.Seal(59, [], new byte[100], out _));
    }

    [Theory]
    [MemberData(nameof(Suites))]
    public void SealAndOpen_AfterWarmUp_AllocateNothing(EspSuite suite)
    {
        byte[] km = Sequence(5, EspSuites.KeyMaterialLength(suite));
        using var tx = new SecurityAssociation(Spi, suite, km);
        using var rx = new SecurityAssociation(Spi, suite, km, replayWindowSize: 1024);
        byte[] payload = Sequence(0, 1400);
        var packet = new byte[1500];
        var opened = new byte[1500];
        for (int i = 0; i < 10; i++)
        {
            RoundTrip(tx, rx, payload, packet, opened);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            RoundTrip(tx, rx, payload, packet, opened);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(1010u, rx.ReplayWindow.RightEdge);
    }

    private static void RoundTrip(SecurityAssociation tx, SecurityAssociation rx, byte[] payload, byte[] packet, byte[] opened)
    {
        WireError sealError = tx.Seal(4, payload, packet, out int written);
        WireError openError = rx.Open(packet.AsSpan(0, written), opened, out int length, out _);
        if (!sealError.IsOk || !openError.IsOk || length != payload.Length)
        {
            Assert.Fail("round trip failed");
        }
    }

    private static SecurityAssociation Receiver(EspSuite suite) =>
        new(Spi, suite, suite == EspSuite.AesGcm256 ? GcmKeyMaterial : CbcKeyMaterial);

    private static string SealHex(SecurityAssociation sa, byte nextHeader, byte[] payload)
    {
        var buffer = new byte[sa.SealedLength(payload.Length)];
        Assert.True(sa.Seal(nextHeader, payload, buffer, out int written).IsOk);
        Assert.Equal(buffer.Length, written);
        return Convert.ToHexStringLower(buffer);
    }

    private static void AssertOpens(SecurityAssociation sa, string hex, byte expectedNextHeader, byte[] expectedPayload)
    {
        var destination = new byte[64];
        WireError error = sa.Open(Convert.FromHexString(hex), destination, out int length, out byte nextHeader);
        Assert.Equal(WireError.None, error);
        Assert.Equal(expectedNextHeader, nextHeader);
        Assert.Equal(expectedPayload, destination.AsSpan(0, length).ToArray());
    }

    private static void AssertError(SecurityAssociation sa, byte[] packet, WireErrorKind kind, int offset)
    {
        var destination = new byte[128];
        WireError error = sa.Open(packet, destination, out int length, out _);
        Assert.Equal(kind, error.Kind);
        Assert.Equal(offset, error.Offset);
        Assert.Equal(0, length);
        Assert.All(destination, b => Assert.Equal(0, b));
    }

    internal static byte[] Sequence(int start, int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)(start + i);
        }

        return bytes;
    }
}
