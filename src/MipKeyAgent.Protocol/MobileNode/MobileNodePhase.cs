namespace MipKeyAgent.Protocol.MobileNode;

/// <summary>
/// What the mobile node's key ring holds, which decides what it transmits under and what it
/// may ask for (PROTOCOL.md sections 4 and 6; the diagram in docs/protocol.md).
/// </summary>
internal enum MobileNodePhase : byte
{
    /// <summary>Only IK: before the first init, or after a deregistration. The next registration initializes.</summary>
    Unkeyed,
    /// <summary>An init is pending: IK transmits, the answer's KEY-DIST (any generation) installs {g, IK}.</summary>
    Initializing,
    /// <summary>N is held and transmits: refreshes, updates (explicit mode) and resends run under it.</summary>
    Keyed,
}
