using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol.HomeAgent;

/// <summary>
/// One dynamic generation as the HA stores it. The secret is key material: a durable store must
/// protect it at rest; it is never logged. The receive right edges let a restarted HA reject
/// packets captured before the restart (RFC 4303 section 3.4.3). <see cref="TransmitSequenceReserved"/> is the ESP
/// sequence number up to which the HA may have sent under this generation's HA->MN SAs, so a
/// restart resumes above it and never reuses a GCM IV.
/// </summary>
public sealed record GenerationRecord(
    Generation Generation,
    byte[] Secret,
    Spi SpiMnToHa,
    Spi SpiHaToMn,
    EspSuite Suite,
    bool Confirmed,
    DateTimeOffset CreatedAt,
    uint TransmitSequenceReserved)
{
    /// <summary>The QKD key reference sent in KEY-DIST (key-reference mode), so a resend after a
    /// restart names the same key; null when the secret is sent wrapped.</summary>
    public KeyReference? Reference { get; init; }

    /// <summary>Right edge of the MN->HA control SA's anti-replay window (exact: written with every accepted BU).</summary>
    public uint ControlReceiveRightEdge { get; init; }

    /// <summary>
    /// Right edge of the MN->HA data SA's window as of the last checkpoint
    /// (<see cref="HomeAgentOptions.ReplayCheckpointInterval"/>).
    /// </summary>
    public uint DataReceiveRightEdge { get; init; }
}

/// <summary>
/// What the HA stores per mobile node so "restart with stored state" works (a durable
/// store such as SQLite keeps it across restarts). Written before the BA that announces a change is emitted.
/// </summary>
/// <param name="HomeAddress">The node.</param>
/// <param name="CareOfAddress">The bound care-of address, or null when no binding.</param>
/// <param name="BindingExpiresAt">When the binding expires (meaningful with a care-of address).</param>
/// <param name="LastSequence">The last accepted BU sequence number, or null.</param>
/// <param name="InitEpoch">The stored init epoch (explicit mode), or null.</param>
/// <param name="EpochGeneration">The generation issued for <paramref name="InitEpoch"/>.</param>
/// <param name="HighestIssued">The highest generation ever issued to this node.</param>
/// <param name="Newest">N (dynamic), or null.</param>
/// <param name="Previous">N-1 when dynamic, or null (IK or none).</param>
/// <param name="RekeyDueAt">When the HA's own rekey timer fires, or null.</param>
/// <param name="RekeyPending">The rekey timer fired and the flag waits for the next BU.</param>
public sealed record BindingRecord(
    Ipv6Address HomeAddress,
    Ipv6Address? CareOfAddress,
    DateTimeOffset BindingExpiresAt,
    ushort? LastSequence,
    ulong? InitEpoch,
    Generation EpochGeneration,
    Generation HighestIssued,
    GenerationRecord? Newest,
    GenerationRecord? Previous,
    DateTimeOffset? RekeyDueAt,
    bool RekeyPending)
{
    /// <summary>Right edge of the IK MN->HA control SA's window, so a captured init cannot be replayed after a restart.</summary>
    public uint InitializationControlReceiveRightEdge { get; init; }

    /// <summary>Right edge of the IK MN->HA data SA's window as of the last checkpoint.</summary>
    public uint InitializationDataReceiveRightEdge { get; init; }

    /// <summary>
    /// Implicit mode: the BU sequence number that started the last init, which plays the epoch
    /// (PROTOCOL.md 8.7), so a restarted HA still drops an older or equal BU under IK silently; null
    /// in explicit mode and before the first init.
    /// </summary>
    public ushort? InitSequence { get; init; }
}
