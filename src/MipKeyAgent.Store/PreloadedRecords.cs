namespace MipKeyAgent.Store;

/// <summary>
/// The records and IK reservations an HA store read and authenticated at open, kept so the engine's provisioning
/// (<c>Load</c>, <c>LoadInitializationSequenceReserved</c>) is answered from memory, each once: the caller owns
/// and zeroes what it takes. A write or removal of a node drops (zeroes) its kept record, so a later read goes to
/// the database. Not thread-safe: the store calls it under its lock.
/// </summary>
internal sealed class PreloadedRecords
{
    private Dictionary<Ipv6Address, BindingRecord> _records = [];
    private Dictionary<Ipv6Address, uint> _reserved = [];

    /// <summary>Keeps what an open read (and drops, zeroing, anything kept before).</summary>
    public void Keep((Dictionary<Ipv6Address, BindingRecord> Records, Dictionary<Ipv6Address, uint> Reserved) read)
    {
        Drop();
        (_records, _reserved) = read;
    }

    /// <summary>Adds what a later read found (a partition taken over by a load-sharing HA); a node kept already has its old copy zeroed.</summary>
    public void Add(Dictionary<Ipv6Address, BindingRecord> records, Dictionary<Ipv6Address, uint> reserved)
    {
        foreach (var (home, record) in records)
        {
            ForgetRecord(home);
            _records[home] = record;
        }
        foreach (var (home, value) in reserved)
        {
            _reserved[home] = value;
        }
    }

    /// <summary>The node's kept record, handed out once (the caller owns its secrets).</summary>
    public bool TakeRecord(Ipv6Address homeAddress, out BindingRecord? record)
    {
        bool found = _records.Remove(homeAddress, out var kept);
        record = kept;
        return found;
    }

    /// <summary>The node's kept IK reservation, handed out once.</summary>
    public bool TakeReserved(Ipv6Address homeAddress, out uint reserved) => _reserved.Remove(homeAddress, out reserved);

    /// <summary>The node's record is being written or removed: its kept copy is stale.</summary>
    public void ForgetRecord(Ipv6Address homeAddress)
    {
        if (_records.Remove(homeAddress, out var stale))
        {
            BindingRows.ZeroSecrets(stale);
        }
    }

    public void ForgetReserved(Ipv6Address homeAddress) => _reserved.Remove(homeAddress);

    /// <summary>Zeroes and forgets every kept record (the bindings are gone); the reservations stay.</summary>
    public void ZeroRecords()
    {
        foreach (var record in _records.Values)
        {
            BindingRows.ZeroSecrets(record);
        }
        _records.Clear();
    }

    /// <summary>Zeroes and forgets everything kept.</summary>
    public void Drop()
    {
        ZeroRecords();
        _reserved.Clear();
    }
}
