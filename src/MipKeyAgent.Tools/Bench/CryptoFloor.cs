using System.Security.Cryptography;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Tools.Bench;

/// <summary>
/// The cryptographic work an exchange cannot avoid, done with the Wire primitives directly and
/// nothing else: the "floor" an engine benchmark is compared with. The Mobility Headers are
/// built once with the same writer and options the engines use, so the sealed lengths match.
/// <list type="bullet">
/// <item><see cref="SealOpen"/>: seal + open of one BU-sized packet (the AEAD primitive).</item>
/// <item><see cref="Exchange"/>: seal + open of a BU and of a BA (what one steady exchange does).</item>
/// <item><see cref="RekeyExchange"/>: the exchange with KEY-UPDATE-REQ / KEY-DIST sizes, plus one
/// 32-octet secret from the CSPRNG, its AES-KWP wrap (HA) and unwrap (MN), and the HKDF
/// derivations of a generation on both sides (control + data, both directions: 4 per side).</item>
/// </list>
/// Cipher key schedules (constructing the SAs of a new generation) are deliberately not part of
/// the floor: they are a cost of the engine's SA representation, measured as the gap.
/// </summary>
internal sealed class CryptoFloor : IDisposable
{
    private readonly SecurityAssociation _buSeal;
    private readonly SecurityAssociation _buOpen;
    private readonly SecurityAssociation _baSeal;
    private readonly SecurityAssociation _baOpen;
    private readonly byte[] _bindingUpdate;
    private readonly byte[] _bindingAck;
    private readonly byte[] _updateRequest;
    private readonly byte[] _keyDistribution;
    private readonly byte[] _esp = new byte[4096];
    private readonly byte[] _plain = new byte[4096];
    private readonly byte[] _secret = new byte[32];
    private readonly byte[] _kek = new byte[32];
    private readonly byte[] _wrapped = new byte[KeyWrap.WrappedLength];
    private readonly byte[] _unwrapped = new byte[KeyWrap.WrappedLength];
    private readonly byte[] _material;
    private readonly EspSuite _suite;

    public CryptoFloor(EspSuite suite = EspSuite.AesGcm256)
    {
        _suite = suite;
        _material = new byte[EspSuites.KeyMaterialLength(suite)];
        var ik = new byte[32];
        new Random(2).NextBytes(ik);
        KeyDerivation.DeriveKek(ik, ExchangeRig.HomeAddress, _kek);
        _buSeal = NewSa(ik, KeyDirection.MnToHa, 1000);
        _buOpen = NewSa(ik, KeyDirection.MnToHa, 1000);
        _baSeal = NewSa(ik, KeyDirection.HaToMn, 1001);
        _baOpen = NewSa(ik, KeyDirection.HaToMn, 1001);
        _bindingUpdate = BindingUpdate(null);
        _updateRequest = BindingUpdate(new KeyUpdateRequest(1));
        _bindingAck = BindingAck(withKeyDistribution: false);
        _keyDistribution = BindingAck(withKeyDistribution: true);
    }

    /// <summary>Mobility Header lengths used: plain BU, plain BA, BU with KEY-UPDATE-REQ, BA with KEY-DIST.</summary>
    public (int BindingUpdate, int BindingAck, int UpdateRequest, int KeyDistribution) MobilityHeaderLengths =>
        (_bindingUpdate.Length, _bindingAck.Length, _updateRequest.Length, _keyDistribution.Length);

    /// <summary>Seal + open of one BU-sized packet.</summary>
    public void SealOpen() => RoundTrip(_buSeal, _buOpen, _bindingUpdate);

    /// <summary>Seal + open of a BU and of a BA.</summary>
    public void Exchange()
    {
        RoundTrip(_buSeal, _buOpen, _bindingUpdate);
        RoundTrip(_baSeal, _baOpen, _bindingAck);
    }

    /// <summary>The AEAD work of a rekey exchange plus the key material work of one generation.</summary>
    public void RekeyExchange()
    {
        RoundTrip(_buSeal, _buOpen, _updateRequest);
        RandomNumberGenerator.Fill(_secret);
        DeriveGeneration();
        KeyWrap.Wrap(_kek, _secret, _wrapped);
        RoundTrip(_baSeal, _baOpen, _keyDistribution);
        KeyWrap.TryUnwrap(_kek, _wrapped, _unwrapped, out _);
        DeriveGeneration();
    }

    private void DeriveGeneration()
    {
        KeyDerivation.DeriveControlKeyMaterial(_secret, KeyDirection.MnToHa, 2000, _suite, _material);
        KeyDerivation.DeriveControlKeyMaterial(_secret, KeyDirection.HaToMn, 2001, _suite, _material);
        KeyDerivation.DeriveDataKeyMaterial(_secret, KeyDirection.MnToHa, 2000 + KeyDerivation.DataSpiOffset, _suite, _material);
        KeyDerivation.DeriveDataKeyMaterial(_secret, KeyDirection.HaToMn, 2001 + KeyDerivation.DataSpiOffset, _suite, _material);
    }

    private void RoundTrip(SecurityAssociation seal, SecurityAssociation open, byte[] mh)
    {
        seal.Seal(IpProtocol.Mobility, mh, _esp, out int written);
        var error = open.Open(_esp.AsSpan(0, written), _plain, out _, out _);
        if (!error.IsOk)
        {
            throw new InvalidOperationException($"floor open failed: {error}");
        }
    }

    private SecurityAssociation NewSa(byte[] secret, KeyDirection direction, uint spi)
    {
        KeyDerivation.DeriveControlKeyMaterial(secret, direction, spi, _suite, _material);
        return new SecurityAssociation(spi, _suite, _material);
    }

    private static byte[] BindingUpdate(KeyUpdateRequest? update)
    {
        var buffer = new byte[MobilityHeader.MaximumLength];
        var writer = new MobilityHeaderWriter(buffer);
        writer.BeginBindingUpdate(7, BindingUpdateFlags.Acknowledge | BindingUpdateFlags.HomeRegistration, 105);
        writer.WriteAlternateCareOfAddress(ExchangeRig.CareOfAddress);
        if (update is { } request)
        {
            writer.WriteKeyUpdateRequest(MipKey.DefaultVendorId, request);
        }
        int length = writer.Finish();
        MobilityHeader.WriteChecksum(buffer.AsSpan(0, length), ExchangeRig.HomeAddress, ExchangeRig.HomeAgentAddress);
        return buffer.AsSpan(0, length).ToArray();
    }

    private static byte[] BindingAck(bool withKeyDistribution)
    {
        var buffer = new byte[MobilityHeader.MaximumLength];
        var writer = new MobilityHeaderWriter(buffer);
        writer.BeginBindingAcknowledgement(BindingAckStatus.Accepted, BindingAckFlags.None, 7, 105);
        if (withKeyDistribution)
        {
            writer.WriteKeyDistributionWrapped(MipKey.DefaultVendorId, 2, 1, 2000, 2001, 0, new byte[KeyWrap.WrappedLength]);
        }
        int length = writer.Finish();
        MobilityHeader.WriteChecksum(buffer.AsSpan(0, length), ExchangeRig.HomeAgentAddress, ExchangeRig.HomeAddress);
        return buffer.AsSpan(0, length).ToArray();
    }

    public void Dispose()
    {
        _buSeal.Dispose();
        _buOpen.Dispose();
        _baSeal.Dispose();
        _baOpen.Dispose();
        CryptographicOperations.ZeroMemory(_secret);
        CryptographicOperations.ZeroMemory(_kek);
        CryptographicOperations.ZeroMemory(_material);
    }
}
