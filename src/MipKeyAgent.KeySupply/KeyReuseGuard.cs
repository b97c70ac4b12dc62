using System.Security.Cryptography;
using System.Text;
using MipKeyAgent.KeySupply.Etsi014;

namespace MipKeyAgent.KeySupply;

/// <summary>
/// Refuses a QKD key served a second time: a key whose key_ID, or whose bytes, were seen before
/// (compared by a keyed hash, so the guard holds no key material). One guard spans every slave SAE
/// of a home agent. It remembers the last <see cref="Capacity"/> keys (about 80 octets each);
/// older ones are forgotten first. Thread-safe.
/// </summary>
public sealed class KeyReuseGuard
{
    /// <summary>Keys remembered by default (about 80 MB).</summary>
    public const int DefaultCapacity = 1 << 20;

    private readonly byte[] _hashKey = RandomNumberGenerator.GetBytes(32);
    private readonly HashSet<UInt128> _seen = [];
    private readonly Queue<(UInt128 Id, UInt128 Bytes)> _order = new();
    private readonly Lock _lock = new();

    public KeyReuseGuard(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
    }

    public int Capacity { get; }

    /// <summary>Keys refused because their key_ID or bytes were seen before.</summary>
    public long Refused { get; private set; }

    /// <summary>True the first time this key_ID and these bytes are seen (and remembers both); false for a repeat of either.</summary>
    public bool FirstUse(EtsiKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var id = Digest("id", Encoding.UTF8.GetBytes(key.KeyId.ToUpperInvariant()));
        var bytes = Digest("key", key.Key);
        lock (_lock)
        {
            if (_seen.Contains(id) || _seen.Contains(bytes))
            {
                Refused++;
                return false;
            }
            if (_order.Count == Capacity)
            {
                var (oldId, oldBytes) = _order.Dequeue();
                _seen.Remove(oldId);
                _seen.Remove(oldBytes);
            }
            _seen.Add(id);
            _seen.Add(bytes);
            _order.Enqueue((id, bytes));
            return true;
        }
    }

    private UInt128 Digest(string domain, ReadOnlySpan<byte> value)
    {
        Span<byte> mac = stackalloc byte[32];
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _hashKey);
        hmac.AppendData(Encoding.ASCII.GetBytes(domain));
        hmac.AppendData(value);
        hmac.GetHashAndReset(mac);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(mac);
    }
}
