using System.Text.Json;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance.Tests;

/// <summary>
/// Holds our AES Key Wrap with Padding (RFC 5649) against python3-cryptography's: the same
/// octets for the same KEK and key, each side unwraps what the other wrapped, and a tampered
/// ciphertext fails on both.
/// </summary>
public sealed class KeyWrapConformanceTests
{
    private static readonly int[] KekLengths = [16, 24, 32];

    [Fact]
    public void RandomKeysAndKeks_OurWrap_MatchesCryptographyOctetForOctet()
    {
        var random = new Random(5649);
        var cases = new List<(byte[] Kek, byte[] Key)>();
        foreach (int kekLength in KekLengths)
        {
            foreach (int keyLength in new[] { 1, 7, 8, 9, 16, 20, 31, 32, 33, 64 })
            {
                var kek = new byte[kekLength];
                var key = new byte[keyLength];
                random.NextBytes(kek);
                random.NextBytes(key);
                cases.Add((kek, key));
            }
        }

        var theirs = Oracles.KeyWrap("wrap", cases.Select(c => new { kek = Convert.ToHexString(c.Kek), key = Convert.ToHexString(c.Key) }));
        Assert.Equal(cases.Count, theirs.GetArrayLength());
        for (int i = 0; i < cases.Count; i++)
        {
            var ours = new byte[KeyWrap.GetWrappedLength(cases[i].Key.Length)];
            KeyWrap.WrapPadded(cases[i].Kek, cases[i].Key, ours);
            Assert.Equal(theirs[i].GetString(), Convert.ToHexStringLower(ours));
        }
    }

    [Fact]
    public void ThirtyTwoOctetSecrets_EachSideUnwrapsTheOthers_TamperFailsOnBoth()
    {
        var random = new Random(32);
        var keks = new List<byte[]>();
        var secrets = new List<byte[]>();
        for (int i = 0; i < 16; i++)
        {
            var kek = new byte[KeyWrap.KekLength];
            var secret = new byte[KeyWrap.KeyLength];
            random.NextBytes(kek);
            random.NextBytes(secret);
            keks.Add(kek);
            secrets.Add(secret);
        }

        var theirWrapped = Oracles.KeyWrap("wrap", keks.Select((k, i) => new { kek = Convert.ToHexString(k), key = Convert.ToHexString(secrets[i]) }));
        var ourWrapped = new List<byte[]>();
        for (int i = 0; i < keks.Count; i++)
        {
            var wrapped = Convert.FromHexString(theirWrapped[i].GetString()!);
            var key = new byte[KeyWrap.KeyLength];
            Assert.True(KeyWrap.TryUnwrap(keks[i], wrapped, key, out int written).IsOk);
            Assert.Equal(secrets[i], key.AsSpan(0, written).ToArray());

            var ours = new byte[KeyWrap.WrappedLength];
            KeyWrap.Wrap(keks[i], secrets[i], ours);
            ourWrapped.Add(ours);
        }

        // Ours as they are, then each with one octet flipped (a different position per case).
        var tampered = ourWrapped.Select((w, i) => { var t = (byte[])w.Clone(); t[i % t.Length] ^= 0x01; return t; }).ToList();
        var unwrapCases = ourWrapped.Concat(tampered).Select((w, i) => new { kek = Convert.ToHexString(keks[i % keks.Count]), wrapped = Convert.ToHexString(w) });
        JsonElement theirUnwrap = Oracles.KeyWrap("unwrap", unwrapCases);
        for (int i = 0; i < keks.Count; i++)
        {
            Assert.Equal(Convert.ToHexStringLower(secrets[i]), theirUnwrap[i].GetString());
            Assert.Equal(JsonValueKind.Null, theirUnwrap[keks.Count + i].ValueKind);
            Assert.Equal(WireErrorKind.AuthenticationFailed, KeyWrap.TryUnwrap(keks[i], tampered[i], new byte[KeyWrap.KeyLength], out _).Kind);
        }
    }
}
