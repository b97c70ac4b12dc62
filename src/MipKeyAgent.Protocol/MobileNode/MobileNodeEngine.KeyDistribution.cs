using MipKeyAgent.Esp;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol.MobileNode;

public sealed partial class MobileNodeEngine
{
    /// <summary>What PROTOCOL.md section 6 makes of a KEY-DIST (<see cref="JudgeKeyDistribution"/>).</summary>
    private enum KeyDistributionVerdict : byte
    {
        /// <summary>Not newer than N and not answering an init: ignored.</summary>
        Duplicate,
        /// <summary>Unusable: IK, an unknown suite, SPIs this ring cannot install, a reference without a resolver, or a key that does not unwrap.</summary>
        Rejected,
        /// <summary>To install (a wrapped key: unwrapped already by <see cref="AcceptKeyDistribution"/>).</summary>
        Acceptable,
        /// <summary>To fetch by reference from the node's own KME, then install.</summary>
        Reference,
    }

    /// <summary>
    /// The one rule for accepting a KEY-DIST (PROTOCOL.md section 6), on every path that installs
    /// one: a BA of the exchange, a late answer to the last init, a fetched key's arrival. A
    /// generation not newer than N is a duplicate unless it answers an init (whatever its
    /// number); IK, an unknown suite, SPIs this ring cannot install, or a key reference without a
    /// resolver are unusable.
    /// </summary>
    private KeyDistributionVerdict JudgeKeyDistribution(Generation generation, Spi spiMnToHa, Spi spiHaToMn, EspSuite suite, bool isReference,
        bool answersInit)
    {
        if (!answersInit && generation <= _ring.Newest.Generation && !Faulty(MobileNodeFaults.AcceptStaleKeyDistribution))
        {
            return KeyDistributionVerdict.Duplicate;
        }
        if ((isReference && _resolver is null) || generation.IsInitialization || !EspSuites.IsDefined(suite)
            || !_ring.CanInstall(spiMnToHa, spiHaToMn, afterInit: answersInit))
        {
            return KeyDistributionVerdict.Rejected;
        }
        return KeyDistributionVerdict.Acceptable;
    }

    /// <summary>
    /// <see cref="JudgeKeyDistribution"/> for a received KEY-DIST, before anything changes: a
    /// wrapped key must unwrap under the KEK to 32 octets (it is left in <paramref name="secret"/>,
    /// which the caller zeroes, so the install does not unwrap it again); a key reference is
    /// <see cref="KeyDistributionVerdict.Reference"/>.
    /// </summary>
    private KeyDistributionVerdict AcceptKeyDistribution(in KeyDistribution distribution, bool answersInit, Span<byte> secret)
    {
        var verdict = JudgeKeyDistribution(new Generation(distribution.Generation), new Spi(distribution.SpiMnToHa), new Spi(distribution.SpiHaToMn),
            (EspSuite)distribution.Suite, distribution.IsKeyReference, answersInit);
        if (verdict != KeyDistributionVerdict.Acceptable)
        {
            return verdict;
        }
        if (distribution.IsKeyReference)
        {
            return KeyDistributionVerdict.Reference;
        }
        bool unwrapped = KeyWrap.TryUnwrap(_kek, distribution.WrappedKey, secret, out int written).IsOk && written == KeyLengths.Secret;
        return unwrapped ? KeyDistributionVerdict.Acceptable : KeyDistributionVerdict.Rejected;
    }

    /// <summary>
    /// PROTOCOL.md section 6: installs a KEY-DIST that <see cref="AcceptKeyDistribution"/> did not
    /// reject, keeping {g, previous} ({g, IK} when it answers an init); a duplicate is ignored. A key
    /// reference starts a fetch from the node's own KME instead (installed by <see cref="KeyArrived"/>).
    /// </summary>
    private ReceiveResult OnKeyDistribution(GenerationKeys keys, in KeyDistribution distribution, KeyDistributionVerdict verdict, bool answersInit,
        ReadOnlySpan<byte> unwrappedSecret, DateTimeOffset now)
    {
        var generation = new Generation(distribution.Generation);
        var suite = (EspSuite)distribution.Suite;
        var spiMnToHa = new Spi(distribution.SpiMnToHa);
        var spiHaToMn = new Spi(distribution.SpiHaToMn);
        switch (verdict)
        {
            case KeyDistributionVerdict.Reference:
                return BeginKeyFetch(keys, distribution, generation, spiMnToHa, spiHaToMn, suite, answersInit, now);
            case KeyDistributionVerdict.Acceptable:
                // A wrapped key supersedes a reference still being fetched (e.g. the HA fell back to a local key).
                _fetch = null;
                Install(generation, unwrappedSecret[..KeyLengths.Secret], spiMnToHa, spiHaToMn, suite, answersInit, now);
                return Accepted(keys);
            default:
                return Accepted(keys);
        }
    }

    /// <summary>
    /// A BA outside the exchange in flight: if it answers a BU of the last completed init with a
    /// KEY-DIST newer than anything held, a retransmission of that init reached the HA after the
    /// answer this node installed; in implicit mode (no epoch) the HA took it for a new init
    /// (rule 6) and now holds only the new generation and IK: follow it, or neither side can read
    /// the other. Anything else is unexpected.
    /// </summary>
    private ReceiveResult OnLateInitAnswer(GenerationKeys keys, in BindingAcknowledgement ba, Span<byte> secret, DateTimeOffset now)
    {
        if (!ba.IsAccepted || _lastInit is not { } range || SequenceNumber.IsNewer(range.First, ba.Sequence)
            || SequenceNumber.IsNewer(ba.Sequence, range.Last)
            || !ba.Options.TryGetKeyDistribution(_options.VendorId, out var late)
            || new Generation(late.Generation) <= _ring.Newest.Generation)
        {
            return Dropped(DropReason.Unexpected, keys);
        }
        var verdict = AcceptKeyDistribution(late, answersInit: true, secret);
        if (verdict == KeyDistributionVerdict.Rejected)
        {
            return Dropped(DropReason.KeyDistributionRejected, keys);
        }
        Counters.ControlAccepted++;
        return OnKeyDistribution(keys, late, verdict, answersInit: true, secret, now);
    }

    /// <summary>Installs generation <paramref name="generation"/> as N: {g, IK} after an init, else {g, N}.</summary>
    private void Install(Generation generation, ReadOnlySpan<byte> secret, Spi spiMnToHa, Spi spiHaToMn, EspSuite suite, bool answersInit,
        DateTimeOffset now, KeyReference? reference = null)
    {
        // An init's answer may be a generation this node already sent under (the HA resends an
        // unconfirmed N to a node that restarted or re-initialized): its counters start above
        // the stored reservation so no ESP sequence number (GCM IV) repeats under it.
        uint floor = answersInit ? _state.InitializationSequenceReserved : 0;
        if (answersInit && _ring.Find(generation) is { Generation.IsInitialization: false } held && held.SpiMnToHa == spiMnToHa
            && held.SpiHaToMn == spiHaToMn)
        {
            // The same generation held (stored) already, e.g. sent again after a re-init: above everything it reserved.
            floor = Math.Max(floor, held.TransmitSequenceReserved);
        }
        var installed = GenerationKeys.Create(generation, secret, spiMnToHa, spiHaToMn, suite, now, _options.ReplayWindowSize, floor);
        installed.Confirmed = true;
        installed.Reference = reference;
        if (answersInit)
        {
            _ring.InstallAfterInit(installed);
            _initAnswer = installed;
            _phase = MobileNodePhase.Keyed;
            Counters.Inits++;
        }
        else if (generation <= _ring.Newest.Generation)
        {
            // Only under MobileNodeFaults.AcceptStaleKeyDistribution (JudgeKeyDistribution ignores such a KEY-DIST otherwise).
            _ring.InstallAfterInit(installed);
            Counters.Updates++;
        }
        else
        {
            _ring.InstallNext(installed);
            // An update installed while an init is pending leaves the init pending.
            _phase = _phase == MobileNodePhase.Initializing ? MobileNodePhase.Initializing : MobileNodePhase.Keyed;
            Counters.Updates++;
        }
        _keyRetry = null;
        _rekeyDueAt = _options.RekeyInterval is { } interval ? now + interval : null;
        // Stored before any packet under the new generation can leave.
        Persist();
        Raise(ProtocolEventKind.KeyInstalled, installed, 0);
        if (!answersInit && Faulty(MobileNodeFaults.RequestBeforeConfirmation) && !_exchange.InFlight)
        {
            StartExchange(BindingUpdateKind.Update);
        }
    }
}
