using System.Security.Cryptography;

namespace MipKeyAgent.QkdNode;

/// <summary>One key held by a KME: its key_ID and bytes (zeroed when dropped).</summary>
internal sealed class StoredKey(Guid keyId, byte[] key) : IDisposable
{
    public Guid KeyId { get; } = keyId;
    public byte[] Key { get; private set; } = key;

    /// <summary>Keeps the first <paramref name="bytes"/> octets (a request for a smaller size).</summary>
    public void Truncate(int bytes)
    {
        if (bytes < Key.Length)
        {
            var shorter = Key.AsSpan(0, bytes).ToArray();
            CryptographicOperations.ZeroMemory(Key);
            Key = shorter;
        }
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(Key);
}

/// <summary>A key handed out by enc_keys and waiting for its slave SAE's dec_keys.</summary>
internal sealed record IssuedKey(StoredKey Key, string MasterSaeId, string SlaveSaeId);

internal enum DecKeysOutcome { Ok, NotFound, NotIssuedToCaller }

/// <summary>
/// The key pools of one KME, one per target KME (the peer, or this KME itself when both
/// SAEs are attached here), plus the keys issued and not yet collected by dec_keys.
/// ETSI GS QKD 014: "delivered keys leave the pool"; a key is delivered once to each side.
/// Thread-safe; no I/O.
/// </summary>
internal sealed class KeyStore : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedList<StoredKey>> _pools = new(StringComparer.Ordinal);
    private readonly Dictionary<Guid, IssuedKey> _issued = [];
    private readonly Dictionary<Guid, LinkedListNode<StoredKey>> _pooled = [];

    public int Count(string targetKmeId)
    {
        lock (_lock)
        {
            return _pools.TryGetValue(targetKmeId, out var pool) ? pool.Count : 0;
        }
    }

    public int IssuedCount
    {
        get
        {
            lock (_lock)
            {
                return _issued.Count;
            }
        }
    }

    /// <summary>Adds keys (generated here, or received from the master); a key_ID already
    /// known is ignored, so a repeated push is harmless.</summary>
    public int Add(string targetKmeId, IEnumerable<StoredKey> keys)
    {
        var added = 0;
        lock (_lock)
        {
            var pool = Pool(targetKmeId);
            foreach (var key in keys)
            {
                if (_pooled.ContainsKey(key.KeyId) || _issued.ContainsKey(key.KeyId))
                {
                    key.Dispose();
                    continue;
                }
                _pooled[key.KeyId] = pool.AddLast(key);
                added++;
            }
        }
        return added;
    }

    /// <summary>
    /// Takes <paramref name="number"/> keys from the front of the pool for
    /// <paramref name="targetKmeId"/>, or none when fewer are stored. When
    /// <paramref name="keepForSlave"/> is set (both SAEs attached here) the keys are also
    /// remembered for the slave's dec_keys.
    /// </summary>
    public List<StoredKey>? TryTake(string targetKmeId, int number, int sizeBytes, string masterSaeId, string slaveSaeId, bool keepForSlave)
    {
        lock (_lock)
        {
            var pool = Pool(targetKmeId);
            if (pool.Count < number)
            {
                return null;
            }
            var taken = new List<StoredKey>(number);
            for (var i = 0; i < number; i++)
            {
                var key = pool.First!.Value;
                pool.RemoveFirst();
                _pooled.Remove(key.KeyId);
                key.Truncate(sizeBytes);
                if (keepForSlave)
                {
                    // The slave's copy is its own array: zeroing one side never touches the other.
                    _issued[key.KeyId] = new IssuedKey(new StoredKey(key.KeyId, key.Key.ToArray()), masterSaeId, slaveSaeId);
                }
                taken.Add(key);
            }
            return taken;
        }
    }

    /// <summary>Puts keys back at the front (the peer could not be told about them).</summary>
    public void Return(string targetKmeId, IReadOnlyList<StoredKey> keys)
    {
        lock (_lock)
        {
            var pool = Pool(targetKmeId);
            for (var i = keys.Count - 1; i >= 0; i--)
            {
                _pooled[keys[i].KeyId] = pool.AddFirst(keys[i]);
            }
        }
    }

    /// <summary>
    /// Slave side of a pairing: the master issued these pooled keys to (master SAE, slave
    /// SAE); move them from the pool to the issued set. All or nothing.
    /// </summary>
    public bool Assign(string targetKmeId, IReadOnlyList<Guid> keyIds, int sizeBytes, string masterSaeId, string slaveSaeId)
    {
        lock (_lock)
        {
            var pool = Pool(targetKmeId);
            var nodes = new List<LinkedListNode<StoredKey>>(keyIds.Count);
            foreach (var id in keyIds)
            {
                if (!_pooled.TryGetValue(id, out var node) || node.List != pool || nodes.Contains(node))
                {
                    return false;
                }
                nodes.Add(node);
            }
            foreach (var node in nodes)
            {
                pool.Remove(node);
                _pooled.Remove(node.Value.KeyId);
                node.Value.Truncate(sizeBytes);
                _issued[node.Value.KeyId] = new IssuedKey(node.Value, masterSaeId, slaveSaeId);
            }
            return true;
        }
    }

    /// <summary>
    /// Receiving side of a relay hop: takes the named keys out of the pool shared with
    /// <paramref name="targetKmeId"/> (the sender took the same keys from its pool). All or nothing;
    /// null when one is missing or named twice. The caller owns (and zeroes) them: a link key used
    /// for a relay never returns to a pool.
    /// </summary>
    public List<StoredKey>? TakeById(string targetKmeId, IReadOnlyList<Guid> keyIds)
    {
        lock (_lock)
        {
            var pool = Pool(targetKmeId);
            var nodes = new List<LinkedListNode<StoredKey>>(keyIds.Count);
            foreach (var id in keyIds)
            {
                if (!_pooled.TryGetValue(id, out var node) || node.List != pool || nodes.Contains(node))
                {
                    return null;
                }
                nodes.Add(node);
            }
            foreach (var node in nodes)
            {
                pool.Remove(node);
                _pooled.Remove(node.Value.KeyId);
            }
            return [.. nodes.Select(n => n.Value)];
        }
    }

    /// <summary>Drops (and zeroes) every pooled key toward <paramref name="targetKmeId"/>: the peer
    /// no longer holds them (it restarted), so none of them can ever be used. Returns how many.</summary>
    public int Drain(string targetKmeId)
    {
        lock (_lock)
        {
            var pool = Pool(targetKmeId);
            var count = pool.Count;
            foreach (var key in pool)
            {
                _pooled.Remove(key.KeyId);
                key.Dispose();
            }
            pool.Clear();
            return count;
        }
    }

    /// <summary>The key_IDs pooled toward <paramref name="targetKmeId"/>, front first (for tests and diagnostics).</summary>
    public IReadOnlyList<Guid> PooledIds(string targetKmeId)
    {
        lock (_lock)
        {
            return [.. Pool(targetKmeId).Select(k => k.KeyId)];
        }
    }

    /// <summary>
    /// Destination of a relay: keys issued at the origin KME to (master SAE, slave SAE), held here
    /// for the slave's dec_keys. All or nothing: false (nothing added) when a key_ID is already known.
    /// </summary>
    public bool AddIssued(IReadOnlyList<StoredKey> keys, string masterSaeId, string slaveSaeId)
    {
        lock (_lock)
        {
            if (keys.Any(k => _issued.ContainsKey(k.KeyId) || _pooled.ContainsKey(k.KeyId)) || keys.Select(k => k.KeyId).Distinct().Count() != keys.Count)
            {
                return false;
            }
            foreach (var key in keys)
            {
                _issued[key.KeyId] = new IssuedKey(key, masterSaeId, slaveSaeId);
            }
            return true;
        }
    }

    /// <summary>
    /// dec_keys: hands out the keys only if every one was issued to (master, caller).
    /// Unknown IDs win over foreign ones (400 before 401); nothing leaves on failure.
    /// </summary>
    public DecKeysOutcome TryCollect(IReadOnlyList<Guid> keyIds, string masterSaeId, string callerSaeId, out List<StoredKey> keys, out List<Guid> notFound)
    {
        keys = [];
        notFound = [];
        lock (_lock)
        {
            var foreign = false;
            foreach (var id in keyIds)
            {
                if (_issued.TryGetValue(id, out var issued))
                {
                    foreign |= issued.MasterSaeId != masterSaeId || issued.SlaveSaeId != callerSaeId;
                }
                else if (_pooled.ContainsKey(id))
                {
                    foreign = true; // on this KME but issued to nobody yet
                }
                else
                {
                    notFound.Add(id);
                }
            }
            if (notFound.Count > 0)
            {
                return DecKeysOutcome.NotFound;
            }
            if (foreign)
            {
                return DecKeysOutcome.NotIssuedToCaller;
            }
            foreach (var id in keyIds)
            {
                if (_issued.Remove(id, out var issued))
                {
                    keys.Add(issued.Key);
                }
            }
            return DecKeysOutcome.Ok;
        }
    }

    private LinkedList<StoredKey> Pool(string targetKmeId)
    {
        if (!_pools.TryGetValue(targetKmeId, out var pool))
        {
            pool = new LinkedList<StoredKey>();
            _pools[targetKmeId] = pool;
        }
        return pool;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var pool in _pools.Values)
            {
                foreach (var key in pool)
                {
                    key.Dispose();
                }
                pool.Clear();
            }
            _pooled.Clear();
            foreach (var issued in _issued.Values)
            {
                issued.Key.Dispose();
            }
            _issued.Clear();
        }
    }
}
