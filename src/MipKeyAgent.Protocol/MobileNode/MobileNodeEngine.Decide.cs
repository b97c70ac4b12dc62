using static MipKeyAgent.Protocol.MobileNode.MobileNodeDecision;
using static MipKeyAgent.Protocol.MobileNode.MobileNodeEvent;

namespace MipKeyAgent.Protocol.MobileNode;

public sealed partial class MobileNodeEngine
{
    /// <summary>
    /// PROTOCOL.md section 6 (with section 8's decisions) as one table: what the node does about
    /// <paramref name="ev"/> in <paramref name="phase"/> with <paramref name="exchange"/> in flight
    /// (null: none). A function of its arguments only, changing nothing; the callers carry the
    /// decision out. While an exchange is in flight only its BA timer runs: the idle timers
    /// (key retry, rekey, refresh) and a BRR wait for it to end.
    /// </summary>
    internal static MobileNodeDecision Decide(MobileNodePhase phase, BindingUpdateKind? exchange, MobileNodeEvent ev) => ev switch
    {
        MobileNodeEvent.Start => phase == MobileNodePhase.Keyed ? RestoreBinding : BeginInit,
        StartAfterUnansweredInit => BeginInit,
        ReinitializeRequested => MobileNodeDecision.Reinitialize,
        // Rule 5: no update while an init is pending; its answer restarts the rekey timer.
        UpdateRequested or RekeyDue => exchange is null && phase == MobileNodePhase.Keyed ? SendUpdate : None,
        // Registering again after a deregistration: there are no keys to use but IK, so initialize.
        Moved => phase == MobileNodePhase.Unkeyed ? BeginInit : exchange is null ? SendPlain : None,
        DeregisterRequested => SendDeregister,
        RefreshRequested or RefreshDue => exchange is null ? SendPlain : None,
        KeyRetryDue => exchange is null ? SendUpdate : None,
        // The same init again (same epoch); an init answered meanwhile leaves an update to ask for.
        InitRetryDue => exchange is null ? (phase == MobileNodePhase.Initializing ? SendInit : SendUpdate) : None,
        KeyFetchAbandoned => exchange is null ? SendResend : None,
        InitFetchAbandoned => exchange is null ? SendInit : None,
        // Section 6: a retransmission after a lost key exchange carries KEY-RESEND-REQ.
        BindAckTimeout => exchange switch { null => None, BindingUpdateKind.Update => RetransmitAsResend, _ => Retransmit },
        // Section 6: assume the HA lost its keys; an init is retransmitted forever (no re-init of a re-init).
        RetransmissionsExhausted => exchange switch
        {
            null => None,
            BindingUpdateKind.Init => Retransmit,
            BindingUpdateKind.Deregister => AbandonDeregistration,
            _ => MobileNodeDecision.Reinitialize,
        },
        AckSequenceOutOfWindow => exchange is null ? DropUnexpected : CorrectSequence,
        AckOutsideExchange => phase == MobileNodePhase.Initializing ? DropUnexpected : FollowLateInitAnswer,
        // The remaining events are BAs answering a BU of the exchange in flight.
        _ when exchange is null => DropUnexpected,
        AckRefused => CompleteRefused,
        _ when exchange == BindingUpdateKind.Deregister => CompleteDeregistration,
        AckKeyDistribution => InstallKey,
        AckKeySourceUnavailable => AwaitKeySource,
        AckKeyRefused => CompleteAndReinitialize,
        AckOtherKeyStatus => CompleteRegistration,
        AckPlain => exchange == BindingUpdateKind.Plain ? CompleteRegistration : AskAgainLater,
        _ => None,
    };

    /// <summary>The kind of the exchange in flight, or null.</summary>
    private BindingUpdateKind? ExchangeKind => _exchange.InFlight ? _exchange.Kind : null;

    /// <summary>Decides <paramref name="ev"/> in the current state and carries out a decision that starts or continues an exchange.</summary>
    private void Handle(MobileNodeEvent ev) => Apply(Decide(_phase, ExchangeKind, ev));

    /// <summary>
    /// Carries out a decision of a command or a timer. The decisions about a BA need the BA and are
    /// carried out where it is received (<see cref="OnBindingAcknowledgement(Keys.GenerationKeys, Wire.BindingAcknowledgement)"/>).
    /// </summary>
    private void Apply(MobileNodeDecision decision)
    {
        if (ExchangeToStart(decision) is { } kind)
        {
            StartExchange(kind);
            if (kind == BindingUpdateKind.Resend)
            {
                Counters.Resends++;
            }
            return;
        }
        switch (decision)
        {
            case BeginInit:
                BeginInitialization();
                break;
            case MobileNodeDecision.Reinitialize:
                Counters.ReInits++;
                BeginInitialization();
                break;
            case RestoreBinding:
                _rekeyDueAt = _options.RekeyInterval is { } interval ? _time.GetUtcNow() + interval : null;
                Raise(ProtocolEventKind.StateRestored, _ring.Newest, _state.NextSequence);
                StartExchange(BindingUpdateKind.Plain);
                break;
            case Retransmit:
                RetransmitExchange(_exchange.Kind);
                break;
            case RetransmitAsResend:
                RetransmitExchange(Faulty(MobileNodeFaults.NoResendRequest) ? BindingUpdateKind.Update : BindingUpdateKind.Resend);
                break;
            case AbandonDeregistration:
                EndExchange();
                ForgetRegistration();
                break;
            default:
                break;
        }
    }

    /// <summary>The exchange a Send decision starts, or null.</summary>
    private static BindingUpdateKind? ExchangeToStart(MobileNodeDecision decision) => decision switch
    {
        SendPlain => BindingUpdateKind.Plain,
        SendInit => BindingUpdateKind.Init,
        SendUpdate => BindingUpdateKind.Update,
        SendResend => BindingUpdateKind.Resend,
        SendDeregister => BindingUpdateKind.Deregister,
        _ => null,
    };
}
