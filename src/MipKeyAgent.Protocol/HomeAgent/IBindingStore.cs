using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol.HomeAgent;

/// <summary>
/// The HA's state store seam. Two kinds of data with different lifetimes:
/// <list type="bullet">
/// <item>binding records (keys, epochs, sequence numbers), lost when the HA loses its state;</item>
/// <item>the retired SPIs and the initialization key's outbound ESP sequence reservation, which live as long as the
/// provisioned IK does: IK is permanent, so its GCM IVs must never repeat, even after the
/// dynamic state is lost (RFC 4303 section 3.3.3, RFC 4106 section 3).</item>
/// </list>
/// Calls are synchronous: the engine must know the write happened before it emits the BA.
/// Every <see cref="Save(BindingRecord)"/> gets fresh records (their replay right edges move with each BU), and
/// the store owns their secret arrays. The engine itself calls <see cref="Save(in BindingState)"/>,
/// which passes the same content without building a record (no heap allocation per BU);
/// its default builds the record, so a store needs to implement only the record form.
/// </summary>
public interface IBindingStore
{
    /// <summary>The node's record, or null. The caller owns the returned secret arrays (and zeroes them).</summary>
    BindingRecord? Load(Ipv6Address homeAddress);

    /// <summary>Writes the node's record durably. The store takes ownership of the record's secret arrays.</summary>
    void Save(BindingRecord record);

    /// <summary>
    /// Writes the node's state durably, like <see cref="Save(BindingRecord)"/>, from a view of the
    /// engine's live state: the secrets are spans valid only during the call, which the store copies
    /// or encrypts and never keeps. The default builds a record with copies of the secrets and
    /// calls <see cref="Save(BindingRecord)"/>; a store may override it to avoid the allocation.
    /// </summary>
    void Save(in BindingState state) => Save(state.ToRecord());

    void Remove(Ipv6Address homeAddress);

    /// <summary>The IK HA->MN sequence number reserved so far (0 when none).</summary>
    uint LoadInitializationSequenceReserved(Ipv6Address homeAddress);

    void SaveInitializationSequenceReserved(Ipv6Address homeAddress, uint reserved);

    /// <summary>
    /// Every control SPI retired so far (PROTOCOL.md section 3: never reused for another secret while
    /// the HA keeps its state). Like the IK reservations, these survive the loss of binding records.
    /// </summary>
    IReadOnlyCollection<uint> LoadRetiredSpis();

    /// <summary>Adds retired control SPIs; written before the binding record that no longer holds them.</summary>
    void SaveRetiredSpis(IReadOnlyCollection<uint> spis);

    /// <summary>
    /// Starts a group: the writes until <see cref="CommitGroup"/> are buffered in one transaction
    /// (none is durable before it). The default does nothing (every write is durable on its own).
    /// </summary>
    void BeginGroup()
    {
    }

    /// <summary>
    /// Makes every write since <see cref="BeginGroup"/> durable at once (one commit, one fsync), or
    /// throws; no answer that depends on the group's writes may leave before it returns.
    /// </summary>
    void CommitGroup()
    {
    }
}
