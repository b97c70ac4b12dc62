namespace MipKeyAgent.Protocol.MobileNode;

/// <summary>What the mobile node does about an event (<see cref="MobileNodeEngine.Decide"/>): PROTOCOL.md section 6 as a table.</summary>
internal enum MobileNodeDecision : byte
{
    /// <summary>Nothing changes (a timer or command that has nothing to do now).</summary>
    None,
    /// <summary>Persist Init Epoch + 1, then BU(IK, KEY-INIT-REQ) (implicit mode: a plain BU under IK).</summary>
    BeginInit,
    /// <summary>Assume the HA lost the keys: count a re-init, then <see cref="BeginInit"/>.</summary>
    Reinitialize,
    /// <summary>Start with stored keys: arm the rekey timer, then a plain BU under N.</summary>
    RestoreBinding,
    /// <summary>Start a registration or refresh exchange (plain BU).</summary>
    SendPlain,
    /// <summary>Start an init exchange with the current epoch (a retry of the same init).</summary>
    SendInit,
    /// <summary>Start an update exchange: BU(N, KEY-UPDATE-REQ(N)).</summary>
    SendUpdate,
    /// <summary>Start a resend exchange: BU(N, KEY-RESEND-REQ(N)).</summary>
    SendResend,
    /// <summary>Start a deregistration exchange (lifetime 0).</summary>
    SendDeregister,
    /// <summary>Send the exchange's BU again with a new sequence number, doubling the timeout.</summary>
    Retransmit,
    /// <summary>As <see cref="Retransmit"/>, an update becoming KEY-RESEND-REQ (the key exchange may have been lost).</summary>
    RetransmitAsResend,
    /// <summary>The deregistration went unanswered: end it and drop the dynamic keys anyway.</summary>
    AbandonDeregistration,

    /// <summary>Drop the BA (counted as unexpected); nothing changes.</summary>
    DropUnexpected,
    /// <summary>Install the BA's KEY-DIST if it answers the last completed init (else drop it as unexpected).</summary>
    FollowLateInitAnswer,
    /// <summary>RFC 6275 section 11.7.1: continue from the HA's last accepted number + 1 and resend now.</summary>
    CorrectSequence,
    /// <summary>End the exchange; the binding is not in place.</summary>
    CompleteRefused,
    /// <summary>End the exchange, drop the dynamic keys.</summary>
    CompleteDeregistration,
    /// <summary>End the exchange as registered and install the KEY-DIST (a usable one: an unusable one drops the BA first).</summary>
    InstallKey,
    /// <summary>End the exchange as registered, keep the keys, ask again after Retry-After.</summary>
    AwaitKeySource,
    /// <summary>End the exchange as registered, then <see cref="Reinitialize"/>.</summary>
    CompleteAndReinitialize,
    /// <summary>End the exchange as registered.</summary>
    CompleteRegistration,
    /// <summary>End the exchange as registered; it asked for a key and got none: ask again later, not in a tight loop.</summary>
    AskAgainLater,
}
