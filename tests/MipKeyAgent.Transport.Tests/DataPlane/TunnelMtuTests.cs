using MipKeyAgent.Protocol.DataPlane;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.DataPlane;

public sealed class TunnelMtuTests
{
    [Theory]
    [InlineData(EspSuite.AesGcm256, 1500, 1426)]
    [InlineData(EspSuite.AesCbc128HmacSha256, 1500, 1406)]
    [InlineData(EspSuite.AesGcm256, 9000, 8926)]
    [InlineData(EspSuite.AesCbc128HmacSha256, 9000, 8910)]
    public void MaxInnerLength_CommonMtus_KnownValues(EspSuite suite, int linkMtu, int expected)
    {
        Assert.Equal(expected, TunnelMtu.MaxInnerLength(suite, linkMtu));
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256)]
    [InlineData(EspSuite.AesCbc128HmacSha256)]
    public void MaxInnerLength_AnyLinkMtu_LargestThatFitsBySealedLength(EspSuite suite)
    {
        for (int linkMtu = 1360; linkMtu <= 1600; linkMtu++)
        {
            int inner = TunnelMtu.MaxInnerLength(suite, linkMtu);

            Assert.True(Ipv6Header.Length + EspSuites.SealedLength(suite, inner) <= linkMtu, $"{inner} overflows {linkMtu}");
            Assert.True(Ipv6Header.Length + EspSuites.SealedLength(suite, inner + 1) > linkMtu, $"{inner + 1} would fit {linkMtu}");
        }
    }

    [Theory]
    [InlineData(EspSuite.AesGcm256, 74, 77)]
    [InlineData(EspSuite.AesCbc128HmacSha256, 82, 97)]
    public void Overhead_AllPaddings_WithinDocumentedRange(EspSuite suite, int least, int most)
    {
        var overheads = Enumerable.Range(1200, 64).Select(n => TunnelMtu.Overhead(suite, n)).ToList();

        Assert.Equal(least, overheads.Min());
        Assert.Equal(most, overheads.Max());
    }

    [Fact]
    public void Validate_LinkOf1280_RefusedBelowIpv6Minimum()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TunnelMtu.Validate(EspSuite.AesGcm256, 1280));

        // GCM inner lengths are 4k + 2 (4-octet alignment less the 2 trailer octets): 1278 is too few.
        Assert.Throws<ArgumentOutOfRangeException>(() => TunnelMtu.Validate(EspSuite.AesGcm256, 1355));
        Assert.Equal(1282, TunnelMtu.Validate(EspSuite.AesGcm256, 1356));
    }
}
