namespace MipKeyAgent.Protocol.MobileNode;

/// <summary>What happened to the mobile node: a host command, a timer expiry, or a received BA or BRR.</summary>
internal enum MobileNodeEvent : byte
{
    /// <summary>The host started the node.</summary>
    Start,
    /// <summary>The host started the node, and the store says its last init was never answered.</summary>
    StartAfterUnansweredInit,
    /// <summary><see cref="MobileNodeEngine.Reinitialize"/>, or a reason to assume the HA lost the keys.</summary>
    ReinitializeRequested,
    /// <summary><see cref="MobileNodeEngine.RequestUpdate"/> while the rekey timer may run (explicit mode, no key being fetched).</summary>
    UpdateRequested,
    /// <summary><see cref="MobileNodeEngine.MoveTo"/>: a new care-of address.</summary>
    Moved,
    /// <summary><see cref="MobileNodeEngine.Deregister"/>.</summary>
    DeregisterRequested,

    /// <summary>The exchange's BA timer expired with retransmissions left.</summary>
    BindAckTimeout,
    /// <summary>The exchange's BA timer expired after <see cref="MobileNodeOptions.MaxUnansweredRetransmissions"/> retransmissions.</summary>
    RetransmissionsExhausted,
    /// <summary>The key retry (after KEY-STATUS 1 or a plain answer to an update) is due.</summary>
    KeyRetryDue,
    /// <summary>The init retry (after KEY-STATUS 1 or a plain answer to an init) is due.</summary>
    InitRetryDue,
    /// <summary>The rekey timer expired while it may run.</summary>
    RekeyDue,
    /// <summary>3/4 of the granted binding lifetime passed.</summary>
    RefreshDue,
    /// <summary>Every fetch of a referenced key (not an init's answer) failed.</summary>
    KeyFetchAbandoned,
    /// <summary>Every fetch of a referenced key answering an init failed.</summary>
    InitFetchAbandoned,

    /// <summary>A Binding Refresh Request (RFC 6275 section 11.7.4).</summary>
    RefreshRequested,
    /// <summary>A BA with status 135 (sequence number out of window).</summary>
    AckSequenceOutOfWindow,
    /// <summary>A BA answering none of the BUs of the exchange in flight (or none in flight).</summary>
    AckOutsideExchange,
    /// <summary>A BA of the exchange refusing the binding (a status other than 135).</summary>
    AckRefused,
    /// <summary>An accepting BA of the exchange with a KEY-DIST.</summary>
    AckKeyDistribution,
    /// <summary>An accepting BA of the exchange with KEY-STATUS 1 (key source unavailable).</summary>
    AckKeySourceUnavailable,
    /// <summary>An accepting BA of the exchange with KEY-STATUS init refused or unknown generation.</summary>
    AckKeyRefused,
    /// <summary>An accepting BA of the exchange with a KEY-STATUS code this node does not act on.</summary>
    AckOtherKeyStatus,
    /// <summary>An accepting BA of the exchange without a key option.</summary>
    AckPlain,
}
