namespace MipKeyAgent.Protocol.HomeAgent;

/// <summary>
/// Protocol bugs the home agent engine can be told to commit, so tests can prove the conformance
/// suite (<c>mipkey conform ha</c>) catches each. Internal, and set only through
/// <see cref="HomeAgentOptions.Faults"/>, an internal property: no command line, file or
/// environment variable reaches it, so a release agent always runs with <see cref="None"/>;
/// test assemblies reach it through InternalsVisibleTo and host the engine in process.
/// </summary>
[Flags]
internal enum HomeAgentFaults
{
    None = 0,
    /// <summary>Seals BAs under N instead of N-1 (PROTOCOL.md 4).</summary>
    TransmitNewest = 1 << 0,
    /// <summary>KEY-RESEND-REQ under N-1 while N is unconfirmed takes a new generation (5.3).</summary>
    ResendTakesNewKey = 1 << 1,
    /// <summary>A retransmitted init (same epoch, K unconfirmed) takes a new generation (5.1).</summary>
    InitRetransmitTakesNewKey = 1 << 2,
    /// <summary>KEY-UPDATE-REQ under N-1 takes N+1 before N is confirmed (5.5).</summary>
    UpdateBeforeConfirmation = 1 << 3,
    /// <summary>An init epoch not newer than the stored one starts a new init (5.1).</summary>
    AcceptStaleEpoch = 1 << 4,
    /// <summary>Writes a wrong Mobility Header checksum in BAs (RFC 6275 6.1.1).</summary>
    BadChecksum = 1 << 5,
    /// <summary>Puts KEY-DIST at 4n+1 instead of 4n+2 (RFC 5094 3).</summary>
    MisalignedOption = 1 << 6,
    /// <summary>Seals every BA with a fresh counter starting at 1, reusing (key, counter) pairs (8.1).</summary>
    CounterReuse = 1 << 7,
    /// <summary>Accepts BU sequence numbers that are not newer instead of answering status 135 (RFC 6275 9.5.1).</summary>
    NoSequenceCheck = 1 << 8,
    /// <summary>Honours a KEY-UPDATE-REQ of the wrong length (8.9).</summary>
    HonourMalformedOption = 1 << 9,
    /// <summary>Takes N+1 on every BU under the confirmed N, asked or not (5.4).</summary>
    RekeyOnPlainBindingUpdate = 1 << 10,
    /// <summary>Echoes the BU's sequence number plus one in the BA (RFC 6275 6.1.8).</summary>
    WrongAckSequence = 1 << 11,
    /// <summary>Wraps KEY-DIST under an all-zero KEK instead of the node's (PROTOCOL.md 3).</summary>
    WrongKek = 1 << 12,
    /// <summary>Arms the rekey timer when a generation is issued rather than when it is confirmed (8.4).</summary>
    TimerFromIssue = 1 << 13,
}
