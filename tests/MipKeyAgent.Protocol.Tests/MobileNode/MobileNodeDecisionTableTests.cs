using static MipKeyAgent.Protocol.MobileNode.MobileNodeDecision;
using static MipKeyAgent.Protocol.MobileNode.MobileNodeEvent;

namespace MipKeyAgent.Protocol.Tests.MobileNode;

/// <summary>
/// <see cref="MobileNodeEngine.Decide"/> against PROTOCOL.md section 6 written out as a table: for
/// each event, rows of (phases, exchanges in flight) that partition every state, and the decision.
/// </summary>
public sealed class MobileNodeDecisionTableTests
{
    [Flags]
    private enum P
    {
        Unkeyed = 1,
        Initializing = 2,
        Keyed = 4,
        Any = Unkeyed | Initializing | Keyed,
    }

    [Flags]
    private enum X
    {
        None = 1,
        Plain = 2,
        Init = 4,
        Update = 8,
        Resend = 16,
        Deregister = 32,
        KeyRequest = Init | Update | Resend,
        InFlight = Plain | KeyRequest | Deregister,
        Any = None | InFlight,
    }

    private static readonly (MobileNodeEvent Event, P Phases, X Exchanges, MobileNodeDecision Expected)[] Rows =
    [
        // Commands.
        (MobileNodeEvent.Start, P.Keyed, X.Any, RestoreBinding),
        (MobileNodeEvent.Start, P.Unkeyed | P.Initializing, X.Any, BeginInit),
        (StartAfterUnansweredInit, P.Any, X.Any, BeginInit),
        (ReinitializeRequested, P.Any, X.Any, MobileNodeDecision.Reinitialize),
        (UpdateRequested, P.Keyed, X.None, SendUpdate),
        (UpdateRequested, P.Keyed, X.InFlight, None),
        (UpdateRequested, P.Unkeyed | P.Initializing, X.Any, None),
        (Moved, P.Unkeyed, X.Any, BeginInit),
        (Moved, P.Initializing | P.Keyed, X.None, SendPlain),
        (Moved, P.Initializing | P.Keyed, X.InFlight, None),
        (DeregisterRequested, P.Any, X.Any, SendDeregister),

        // Timers: the exchange's BA timer.
        (BindAckTimeout, P.Any, X.None, None),
        (BindAckTimeout, P.Any, X.Update, RetransmitAsResend),
        (BindAckTimeout, P.Any, X.Plain | X.Init | X.Resend | X.Deregister, Retransmit),
        (RetransmissionsExhausted, P.Any, X.None, None),
        (RetransmissionsExhausted, P.Any, X.Init, Retransmit),
        (RetransmissionsExhausted, P.Any, X.Deregister, AbandonDeregistration),
        (RetransmissionsExhausted, P.Any, X.Plain | X.Update | X.Resend, MobileNodeDecision.Reinitialize),

        // Timers that start an exchange (with one in flight they wait: WaitForExchange).
        (KeyRetryDue, P.Any, X.None, SendUpdate),
        (InitRetryDue, P.Initializing, X.None, SendInit),
        (InitRetryDue, P.Unkeyed | P.Keyed, X.None, SendUpdate),
        (RekeyDue, P.Keyed, X.None, SendUpdate),
        (RekeyDue, P.Keyed, X.InFlight, None),
        (RekeyDue, P.Unkeyed | P.Initializing, X.Any, None),
        (RefreshDue, P.Any, X.None, SendPlain),
        (KeyFetchAbandoned, P.Any, X.None, SendResend),
        (InitFetchAbandoned, P.Any, X.None, SendInit),

        // Received from the HA.
        (RefreshRequested, P.Any, X.None, SendPlain),
        (AckSequenceOutOfWindow, P.Any, X.None, DropUnexpected),
        (AckSequenceOutOfWindow, P.Any, X.InFlight, CorrectSequence),
        (AckOutsideExchange, P.Initializing, X.Any, DropUnexpected),
        (AckOutsideExchange, P.Unkeyed | P.Keyed, X.Any, FollowLateInitAnswer),
        (AckRefused, P.Any, X.None, DropUnexpected),
        (AckRefused, P.Any, X.InFlight, CompleteRefused),
        // An accepting BA of the exchange: with none in flight it cannot be one; a deregistration's ignores key options.
        (AckKeyDistribution, P.Any, X.Plain | X.KeyRequest, InstallKey),
        (AckKeySourceUnavailable, P.Any, X.Plain | X.KeyRequest, AwaitKeySource),
        (AckKeyRefused, P.Any, X.Plain | X.KeyRequest, CompleteAndReinitialize),
        (AckOtherKeyStatus, P.Any, X.Plain | X.KeyRequest, CompleteRegistration),
        (AckPlain, P.Any, X.Plain, CompleteRegistration),
        (AckPlain, P.Any, X.KeyRequest, AskAgainLater),
    ];

    /// <summary>Events that start an exchange when none is in flight, and wait (decide nothing) while one is.</summary>
    private static readonly MobileNodeEvent[] WaitForExchange =
        [KeyRetryDue, InitRetryDue, RefreshDue, KeyFetchAbandoned, InitFetchAbandoned, RefreshRequested];

    private static readonly MobileNodeEvent[] AcceptingAcks = [AckKeyDistribution, AckKeySourceUnavailable, AckKeyRefused, AckOtherKeyStatus, AckPlain];

    /// <summary>The table, with the rows the events above share.</summary>
    private static readonly (MobileNodeEvent Event, P Phases, X Exchanges, MobileNodeDecision Expected)[] Table =
    [
        .. Rows,
        .. WaitForExchange.Select(ev => (ev, P.Any, X.InFlight, None)),
        .. AcceptingAcks.Select(ack => (ack, P.Any, X.None, DropUnexpected)),
        .. AcceptingAcks.Select(ack => (ack, P.Any, X.Deregister, CompleteDeregistration)),
    ];

    private static readonly (P Flag, MobileNodePhase Phase)[] Phases =
        [(P.Unkeyed, MobileNodePhase.Unkeyed), (P.Initializing, MobileNodePhase.Initializing), (P.Keyed, MobileNodePhase.Keyed)];

    private static readonly (X Flag, BindingUpdateKind? Kind)[] Exchanges =
    [
        (X.None, null), (X.Plain, BindingUpdateKind.Plain), (X.Init, BindingUpdateKind.Init), (X.Update, BindingUpdateKind.Update),
        (X.Resend, BindingUpdateKind.Resend), (X.Deregister, BindingUpdateKind.Deregister),
    ];

    [Fact]
    public void EveryPhaseExchangeAndEvent_Decide_ReturnsTheTablesDecision()
    {
        var wrong = new List<string>();
        foreach (var row in Table)
        {
            foreach (var (_, phase) in Phases.Where(p => row.Phases.HasFlag(p.Flag)))
            {
                foreach (var (exchangeFlag, kind) in Exchanges.Where(x => row.Exchanges.HasFlag(x.Flag)))
                {
                    var actual = MobileNodeEngine.Decide(phase, kind, row.Event);
                    if (actual != row.Expected)
                    {
                        wrong.Add($"{row.Event} in {phase} with {exchangeFlag}: {actual}, table says {row.Expected}");
                    }
                }
            }
        }
        Assert.Empty(wrong);
    }

    [Fact]
    public void EveryPhaseExchangeAndEvent_Table_ListsExactlyOnce()
    {
        var gaps = new List<string>();
        foreach (var ev in Enum.GetValues<MobileNodeEvent>())
        {
            foreach (var (phaseFlag, phase) in Phases)
            {
                foreach (var (exchangeFlag, _) in Exchanges)
                {
                    int rows = Table.Count(r => r.Event == ev && r.Phases.HasFlag(phaseFlag) && r.Exchanges.HasFlag(exchangeFlag));
                    if (rows != 1)
                    {
                        gaps.Add($"{ev} in {phase} with {exchangeFlag}: {rows} rows");
                    }
                }
            }
        }
        Assert.Empty(gaps);
    }
}
