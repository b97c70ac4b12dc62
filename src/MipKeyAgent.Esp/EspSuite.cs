using MipKeyAgent.Esp.Internal;

namespace MipKeyAgent.Esp;

/// <summary>The ESP transforms MIPKEY speaks (PROTOCOL.md section 1, "Suites").</summary>
public enum EspSuite : byte
{
    /// <summary>AES-256-GCM with a 16-octet ICV (RFC 4106); the default.</summary>
    AesGcm256 = 1,

    /// <summary>AES-128-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868).</summary>
    AesCbc128HmacSha256 = 2,

    /// <summary>
    /// AH-only signalling (PROTOCOL.md section 9): BU, BA and BRR under AH (RFC 4302) with
    /// HMAC-SHA-256-128 (RFC 4868); the data SAs of such a generation are suite 1's.
    /// </summary>
    AhHmacSha256 = 3,
}

/// <summary>Sizes of each suite's key material and packet layout.</summary>
public static class EspSuites
{
    /// <summary>ESP header: SPI (4) and Sequence Number (4), RFC 4303 section 2.</summary>
    public const int HeaderLength = 8;

    /// <summary>Pad Length and Next Header octets that end every ESP trailer (RFC 4303 section 2.4-2.6).</summary>
    public const int TrailerLength = 2;

    /// <summary>Both suites carry a 16-octet ICV (RFC 4106 section 3 with ICV 16; RFC 4868 section 2.3 truncates to 128 bits).</summary>
    public const int IcvLength = 16;

    /// <summary>RFC 4106 section 3.1: the explicit IV is 8 octets.</summary>
    public const int GcmIvLength = 8;

    /// <summary>RFC 4106 section 8.1: key material is the AES key followed by a 4-octet salt.</summary>
    public const int GcmSaltLength = 4;

    /// <summary>RFC 4106: AES-256 key.</summary>
    public const int GcmKeyLength = 32;

    /// <summary>RFC 3602 section 3: the IV is one AES block.</summary>
    public const int CbcIvLength = 16;

    /// <summary>AES-128 encryption key of suite 2.</summary>
    public const int CbcEncryptionKeyLength = 16;

    /// <summary>RFC 4868 section 2.1.1: the HMAC-SHA-256-128 key is 32 octets.</summary>
    public const int CbcAuthenticationKeyLength = 32;

    /// <summary>RFC 4868 section 2.1.1: the key of suite 3's AH SAs is 32 octets.</summary>
    public const int AhKeyLength = 32;

    /// <summary>Octets of derived key material a suite's control SA consumes: 36 (key || salt), 48 (enc key || auth key) or 32 (AH key).</summary>
    public static int KeyMaterialLength(EspSuite suite) => suite switch
    {
        EspSuite.AesGcm256 => GcmKeyLength + GcmSaltLength,
        EspSuite.AesCbc128HmacSha256 => CbcEncryptionKeyLength + CbcAuthenticationKeyLength,
        EspSuite.AhHmacSha256 => AhKeyLength,
        _ => ThrowUnknownSuite(suite),
    };

    /// <summary>Whether the control SAs of <paramref name="suite"/> are AH (PROTOCOL.md section 9), not ESP.</summary>
    public static bool IsAuthenticationHeader(EspSuite suite) => suite == EspSuite.AhHmacSha256;

    /// <summary>The ESP suite of a generation's data SAs: the suite itself, or suite 1 for AH-only signalling (PROTOCOL.md section 9).</summary>
    public static EspSuite DataSuite(EspSuite suite) => suite == EspSuite.AhHmacSha256 ? EspSuite.AesGcm256 : suite;

    /// <summary>Length of the IV that follows the ESP header.</summary>
    public static int IvLength(EspSuite suite) => suite switch
    {
        EspSuite.AesGcm256 => GcmIvLength,
        EspSuite.AesCbc128HmacSha256 => CbcIvLength,
        _ => ThrowUnknownSuite(suite),
    };

    /// <summary>
    /// The unit the encrypted part (payload, padding, Pad Length, Next Header) is padded to:
    /// 4 octets for GCM, a stream mode (RFC 4303 section 2.4), one AES block for CBC (RFC 3602 section 2.4).
    /// </summary>
    public static int CiphertextAlignment(EspSuite suite) => suite switch
    {
        EspSuite.AesGcm256 => 4,
        EspSuite.AesCbc128HmacSha256 => 16,
        _ => ThrowUnknownSuite(suite),
    };

    /// <summary>Length of payload, padding and trailer once padded to the suite's alignment (minimum padding).</summary>
    public static int CiphertextLength(EspSuite suite, int payloadLength)
    {
        if (payloadLength < 0)
        {
            EspThrow.ArgumentOutOfRange(nameof(payloadLength), "Payload length is negative.");
        }

        int align = CiphertextAlignment(suite);
        return (payloadLength + TrailerLength + align - 1) / align * align;
    }

    /// <summary>Length of the whole ESP packet (header, IV, ciphertext, ICV) for a payload.</summary>
    public static int SealedLength(EspSuite suite, int payloadLength) =>
        HeaderLength + IvLength(suite) + CiphertextLength(suite, payloadLength) + IcvLength;

    /// <summary>Octets ESP adds around a payload of <paramref name="payloadLength"/> octets.</summary>
    public static int Overhead(EspSuite suite, int payloadLength) => SealedLength(suite, payloadLength) - payloadLength;

    /// <summary>Whether <paramref name="suite"/> is a suite this code implements.</summary>
    public static bool IsDefined(EspSuite suite) => suite is EspSuite.AesGcm256 or EspSuite.AesCbc128HmacSha256 or EspSuite.AhHmacSha256;

    private static int ThrowUnknownSuite(EspSuite suite)
    {
        EspThrow.ArgumentOutOfRange(nameof(suite), "Unknown ESP suite.");
        return 0;
    }
}
