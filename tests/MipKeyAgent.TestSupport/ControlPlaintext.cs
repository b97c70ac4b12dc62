using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.TestSupport;

/// <summary>A generation as a test knows it: secret and control SPIs.</summary>
public sealed record KnownGeneration(byte[] Secret, Spi SpiMnToHa, Spi SpiHaToMn, EspSuite Suite = EspSuite.AesGcm256);

/// <summary>
/// Opens captured BU/BA datagrams with keys the test knows, so a test can look at the plaintext
/// Mobility Headers (e.g. that no key bytes travel in them) and not only at the ESP ciphertext.
/// Each call builds fresh SAs, so the engines' own replay windows are untouched.
/// </summary>
public static class ControlPlaintext
{
    /// <summary>The plaintext MH of every control datagram in <paramref name="capture"/> that one of <paramref name="generations"/> opens.</summary>
    public static List<byte[]> Open(IEnumerable<byte[]> capture, IEnumerable<KnownGeneration> generations)
    {
        var sas = new Dictionary<uint, SecurityAssociation>();
        var owned = new List<GenerationKeys>();
        foreach (var g in generations)
        {
            var keys = GenerationKeys.Create(new Generation(1), g.Secret, g.SpiMnToHa, g.SpiHaToMn, g.Suite, DateTimeOffset.UnixEpoch, 1024);
            owned.Add(keys);
            sas.TryAdd(g.SpiMnToHa.Value, keys.ControlMnToHa);
            sas.TryAdd(g.SpiHaToMn.Value, keys.ControlHaToMn);
        }
        var plaintexts = new List<byte[]>();
        var buffer = new byte[70_000];
        foreach (var datagram in capture)
        {
            if (!Ipv6Datagram.TryParse(datagram, out var parsed).IsOk || parsed.UpperProtocol != IpProtocol.Esp)
            {
                continue;
            }
            var esp = parsed.GetUpper(datagram);
            if (SecurityAssociation.TryPeekSpi(esp, out uint spi, out _).IsOk && sas.TryGetValue(spi, out var sa)
                && sa.Open(esp, buffer, out int length, out byte next).IsOk && next == IpProtocol.Mobility)
            {
                plaintexts.Add(buffer[..length]);
            }
        }
        owned.ForEach(k => k.Dispose());
        return plaintexts;
    }

    /// <summary>True when <paramref name="needle"/> occurs anywhere in <paramref name="haystack"/>.</summary>
    public static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;

    /// <summary>Every KEY-DIST in the plaintext MHs (BAs only): generation and whether it carried a key reference.</summary>
    public static List<(uint Generation, bool IsReference)> KeyDistributions(IEnumerable<byte[]> plaintextMobilityHeaders, uint vendorId = MipKey.DefaultVendorId)
    {
        var found = new List<(uint, bool)>();
        foreach (var mhBytes in plaintextMobilityHeaders)
        {
            if (MobilityHeader.TryParse(mhBytes, out var mh).IsOk && mh.TryGetBindingAcknowledgement(out var ba)
                && ba.Options.TryGetKeyDistribution(vendorId, out var distribution))
            {
                found.Add((distribution.Generation, distribution.IsKeyReference));
            }
        }
        return found;
    }
}
