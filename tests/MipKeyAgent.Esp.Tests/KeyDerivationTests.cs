using System.Security.Cryptography;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Esp.Tests;

public sealed class KeyDerivationTests
{
    // Secret 00 01 ... 1f. Expected outputs computed independently with Python's
    // cryptography.hazmat.primitives.kdf.hkdf.HKDF(SHA256, salt=b"MIPKEY-v1", info=label || SPI BE32).
    private static readonly byte[] Secret = EspTests.Sequence(0, 32);

    [Fact]
    public void BclHkdf_Rfc5869TestCase1_MatchesRfcOutput()
    {
        // RFC 5869 appendix A.1.
        byte[] ikm = Convert.FromHexString("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
        byte[] salt = Convert.FromHexString("000102030405060708090a0b0c");
        byte[] info = Convert.FromHexString("f0f1f2f3f4f5f6f7f8f9");
        var okm = new byte[42];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, okm, salt, info);
        Assert.Equal(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            Convert.ToHexStringLower(okm));
    }

    [Fact]
    public void Salt_Constant_IsProtocolString()
    {
        Assert.Equal("MIPKEY-v1", KeyDerivation.Salt);
        Assert.Equal(0x8000_0000u, KeyDerivation.DataSpiOffset);
    }

    [Theory]
    [InlineData(KeyDirection.HaToMn, 0x100u, EspSuite.AesGcm256,
        "f0f4af72656295b9600a92e5ac55e259e4c990893e33c57075a64a646d45985afcce4533")]
    [InlineData(KeyDirection.MnToHa, 0x101u, EspSuite.AesCbc128HmacSha256,
        "9a9e3238cf9c96b1f35ea3277edc0763a17852b3665c0da57711b43c40708a43c56f767362ee49345d0fa6ec16eaedd0")]
    public void DeriveControlKeyMaterial_FixedSecret_MatchesIndependentHkdf(KeyDirection direction, uint spi, EspSuite suite, string expected)
    {
        var output = new byte[EspSuites.KeyMaterialLength(suite)];
        KeyDerivation.DeriveControlKeyMaterial(Secret, direction, spi, suite, output);
        Assert.Equal(expected, Convert.ToHexStringLower(output));
    }

    [Theory]
    [InlineData(KeyDirection.HaToMn, 0x8000_0100u, EspSuite.AesGcm256,
        "c319b38edf141ac4f3b6fa12715d3b0e625a6f263bd3a3d39db56bf1e93eebaa6f639dd2")]
    [InlineData(KeyDirection.MnToHa, 0x8000_0101u, EspSuite.AesCbc128HmacSha256,
        "b66a0cc004f7c7fa35c0ed6fa1cd624de99ca1e94f8ed2f313826d7d40fbeb0c4c1ceb546dbc0aed004baaca9d6ff862")]
    public void DeriveDataKeyMaterial_FixedSecret_MatchesIndependentHkdf(KeyDirection direction, uint spi, EspSuite suite, string expected)
    {
        var output = new byte[EspSuites.KeyMaterialLength(suite)];
        KeyDerivation.DeriveDataKeyMaterial(Secret, direction, spi, suite, output);
        Assert.Equal(expected, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void DeriveKek_FixedKeyAndHomeAddress_MatchesIndependentHkdf()
    {
        var kek = new byte[32];
        KeyDerivation.DeriveKek(Secret, Ipv6Address.Parse("2001:db8::1"), kek);
        Assert.Equal("07178170e73df1d439e028f3529dce599a6a8556ea77f72bab5bed3b8b3a41c4", Convert.ToHexStringLower(kek));
    }

    [Fact]
    public void Derive_DirectionsAndControlVersusData_GiveDifferentKeys()
    {
        var a = new byte[36];
        var b = new byte[36];
        var c = new byte[36];
        KeyDerivation.DeriveControlKeyMaterial(Secret, KeyDirection.HaToMn, 0x100, EspSuite.AesGcm256, a);
        KeyDerivation.DeriveControlKeyMaterial(Secret, KeyDirection.MnToHa, 0x100, EspSuite.AesGcm256, b);
        KeyDerivation.DeriveDataKeyMaterial(Secret, KeyDirection.HaToMn, 0x100, EspSuite.AesGcm256, c);
        Assert.NotEqual(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Derive_WrongDestinationLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => KeyDerivation.DeriveControlKeyMaterial(Secret, KeyDirection.HaToMn, 1, EspSuite.AesGcm256, new byte[48]));
        Assert.Throws<ArgumentException>(() => KeyDerivation.DeriveDataKeyMaterial(Secret, KeyDirection.HaToMn, 1, EspSuite.AesCbc128HmacSha256, new byte[36]));
        Assert.Throws<ArgumentException>(() => KeyDerivation.DeriveKek(Secret, Ipv6Address.Parse("::1"), new byte[16]));
    }
}
