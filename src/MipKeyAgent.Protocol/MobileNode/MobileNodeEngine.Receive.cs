using System.Security.Cryptography;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol.MobileNode;

public sealed partial class MobileNodeEngine
{
    /// <summary>
    /// Processes one received IPv6 datagram: a BA or BRR from the HA (control SAs) or a tunnelled
    /// packet (data SAs, decrypted into <paramref name="innerDestination"/>). ESP failures are
    /// counted silent drops.
    /// </summary>
    public ReceiveResult Receive(ReadOnlySpan<byte> datagram, Span<byte> innerDestination)
    {
        Counters.Received++;
        if (!Ipv6Datagram.TryParse(datagram, out var parsed).IsOk)
        {
            return Dropped(DropReason.Malformed);
        }
        if (parsed.IsFragment || parsed.UpperProtocol != IpProtocol.Esp)
        {
            return Dropped(DropReason.NotHandled);
        }
        var esp = parsed.GetUpper(datagram);
        if (!SecurityAssociation.TryPeekSpi(esp, out uint spi, out _).IsOk)
        {
            return Dropped(DropReason.Malformed);
        }
        if (!_spis.TryGet(spi, out var entry) || entry.Direction != KeyDirection.HaToMn)
        {
            return Dropped(DropReason.UnknownSpi);
        }
        var keys = entry.Keys;
        // IK stays receivable: the HA answers inits under IK, and a packet it sealed under IK as
        // N-1 may arrive after the next rekey (PROTOCOL.md section 7; docs/protocol.md).
        if (!_ring.IsReceivable(keys) && !keys.Generation.IsInitialization)
        {
            return Dropped(DropReason.GenerationNotReceivable, keys);
        }
        if (entry.IsData)
        {
            var dataError = keys.DataHaToMn.Open(esp, innerDestination, out int length, out byte innerNext);
            if (!dataError.IsOk)
            {
                return Dropped(EspDrop.From(dataError), keys);
            }
            if (innerNext != IpProtocol.Ipv6)
            {
                return Dropped(DropReason.NotHandled, keys);
            }
            Counters.DataDelivered++;
            CheckpointDataWindow(keys);
            return new ReceiveResult(ReceiveOutcome.Data, DropReason.None, HomeAddress, keys.Generation, length);
        }
        var error = keys.ControlHaToMn.Open(esp, _plain, out int mhLength, out byte nextHeader);
        if (!error.IsOk)
        {
            return Dropped(EspDrop.From(error), keys);
        }
        // The window moved: written exactly (like the HA's), so a BA captured before a restart stays a replay after it.
        _controlEdgeUnsaved = true;
        var result = ReceiveControl(keys, parsed, mhLength, nextHeader);
        if (_controlEdgeUnsaved)
        {
            Persist();
        }
        return result;
    }

    private ReceiveResult ReceiveControl(GenerationKeys keys, in Ipv6Datagram parsed, int mhLength, byte nextHeader)
    {
        if (nextHeader != IpProtocol.Mobility || !MobilityHeader.TryParse(_plain.AsSpan(0, mhLength), out var mh).IsOk)
        {
            return Dropped(DropReason.Malformed, keys);
        }
        if (parsed.RoutingHomeAddress != HomeAddress)
        {
            return Dropped(DropReason.HomeAddressMismatch, keys);
        }
        if (!mh.VerifyChecksum(parsed.PseudoHeaderSource, parsed.PseudoHeaderDestination))
        {
            return Dropped(DropReason.BadChecksum, keys);
        }
        if (mh.Type == MobilityHeaderType.BindingRefreshRequest)
        {
            return OnBindingRefreshRequest(keys);
        }
        if (mh.Type != MobilityHeaderType.BindingAcknowledgement || !mh.TryGetBindingAcknowledgement(out var ba))
        {
            return Dropped(DropReason.NotHandled, keys);
        }
        return OnBindingAcknowledgement(keys, ba);
    }

    /// <summary>RFC 6275 section 11.7.4: answer a Binding Refresh Request with a BU (the HA's timer may then rekey, rule 7).</summary>
    private ReceiveResult OnBindingRefreshRequest(GenerationKeys keys)
    {
        Counters.ControlAccepted++;
        Counters.BindingRefreshRequests++;
        if (_exchange is null)
        {
            StartExchange(BindingUpdateKind.Plain);
        }
        return Accepted(keys);
    }

    private ReceiveResult OnBindingAcknowledgement(GenerationKeys keys, BindingAcknowledgement ba)
    {
        // A KEY-DIST's secret is unwrapped once per BA: the check that drops an unusable KEY-DIST
        // before anything changes leaves it here for the install. (AES-KWP through the BCL builds an
        // OpenSSL context per AES block, ~24 per unwrap: unwrapping twice made a rekey 1.2-1.4x
        // dearer.)
        Span<byte> secret = stackalloc byte[KeyWrap.WrappedLength];
        try
        {
            return OnBindingAcknowledgement(keys, ba, secret);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    private ReceiveResult OnBindingAcknowledgement(GenerationKeys keys, BindingAcknowledgement ba, Span<byte> secret)
    {
        var now = _time.GetUtcNow();
        if (ba.Status == BindingAckStatus.SequenceNumberOutOfWindow)
        {
            // RFC 6275 section 11.7.1: continue from the HA's last accepted number + 1, and resend now.
            if (_exchange is not { } pending)
            {
                // Nothing in flight: a drop, which changes nothing (the 135 counter included).
                return Dropped(DropReason.Unexpected, keys);
            }
            Counters.SequenceOutOfWindow++;
            Raise(ProtocolEventKind.SequenceOutOfWindow, keys, ba.Sequence);
            Counters.ControlAccepted++;
            _state = _state with { NextSequence = unchecked((ushort)(ba.Sequence + 1)) };
            _exchangeFirst = _state.NextSequence;
            _timer.Restart(now);
            SendBindingUpdate(pending);
            return new ReceiveResult(ReceiveOutcome.SequenceOutOfWindow, DropReason.None, HomeAddress, keys.Generation, 0);
        }
        if (_exchange is not { } kind || !InExchange(ba.Sequence))
        {
            if (IsLateInitAnswer(ba, out var late))
            {
                if (IsUnusable(late, answersInit: true, secret, out bool lateUnwrapped))
                {
                    return Dropped(DropReason.KeyDistributionRejected, keys);
                }
                // A retransmission of the completed init reached the HA after the answer this node
                // installed; in implicit mode (no epoch) the HA took it for a new init (rule 6) and
                // now holds only the new generation and IK: follow it, or neither side can read the other.
                Counters.ControlAccepted++;
                return OnKeyDistribution(keys, late, BindingUpdateKind.Init, now, lateUnwrapped ? secret[..KeyLengths.Secret] : default,
                    lateInitAnswer: true);
            }
            return Dropped(DropReason.Unexpected, keys);
        }
        // A KEY-DIST this node would install but cannot use drops the whole BA before anything
        // changes: the exchange stays open, so the retransmission asks again (rule 3 resends the
        // same key). Found by the fuzzer's re-seal class: the BA used to end the exchange and
        // register the binding, then report the drop.
        bool unwrapped = false;
        if (ba.IsAccepted && kind != BindingUpdateKind.Deregister && ba.Options.TryGetKeyDistribution(_options.VendorId, out var offered)
            && IsUnusable(offered, answersInit: _awaitingInit && kind == BindingUpdateKind.Init, secret, out unwrapped))
        {
            return Dropped(DropReason.KeyDistributionRejected, keys);
        }
        Counters.ControlAccepted++;
        EndExchange();
        if (!ba.IsAccepted)
        {
            // A refusal other than 135: the binding is not in place; the refresh timer retries later.
            _registered = false;
            _refreshAt = now + _options.MaxBindAckTimeout;
            return Accepted(keys);
        }
        if (kind == BindingUpdateKind.Deregister)
        {
            Counters.Deregistrations++;
            Raise(ProtocolEventKind.Deregistered, keys, ba.Sequence);
            ForgetRegistration();
            return Accepted(keys);
        }
        _registered = true;
        _refreshAt = now + ba.Lifetime * 3 / 4;
        Raise(ProtocolEventKind.BindingAcknowledged, keys, ba.Sequence);
        if (ba.Options.TryGetKeyDistribution(_options.VendorId, out var distribution))
        {
            return OnKeyDistribution(keys, distribution, kind, now, unwrapped ? secret[..KeyLengths.Secret] : default);
        }
        if (ba.Options.TryGetKeyStatus(_options.VendorId, out var status))
        {
            OnKeyStatus(keys, status, kind, now);
        }
        else if (kind is BindingUpdateKind.Update or BindingUpdateKind.Resend or BindingUpdateKind.Init)
        {
            // Asked for a key, got a plain BA (e.g. its KEY-DIST was malformed and ignored,
            // PROTOCOL.md 8.9): ask again later, not in a tight loop.
            _keyRetryKind = kind == BindingUpdateKind.Init ? BindingUpdateKind.Init : BindingUpdateKind.Update;
            _keyRetryAt = now + (kind == BindingUpdateKind.Init ? _options.MaxBindAckTimeout : _options.InitialBindAckTimeout);
        }
        return Accepted(keys);
    }

    private void OnKeyStatus(GenerationKeys keys, KeyStatus status, BindingUpdateKind kind, DateTimeOffset now)
    {
        Raise(ProtocolEventKind.KeyStatus, keys, (ushort)status.Code);
        switch (status.Code)
        {
            case KeyStatusCode.KeySourceUnavailable:
                // Keep current keys; ask again after Retry-After (PROTOCOL.md section 6).
                Counters.KeySourceUnavailable++;
                _keyRetryKind = kind == BindingUpdateKind.Init ? BindingUpdateKind.Init : BindingUpdateKind.Update;
                _keyRetryAt = now + TimeSpan.FromSeconds(status.RetryAfterSeconds);
                break;
            case KeyStatusCode.InitRefused:
            case KeyStatusCode.UnknownGeneration:
                Reinitialize();
                break;
            default:
                break;
        }
    }

    /// <summary>
    /// PROTOCOL.md section 6: a KEY-DIST newer than N (or answering the current init, whatever its
    /// number) is unwrapped and installed, keeping {g, previous}; a duplicate is ignored. A key
    /// reference starts a fetch from the node's own KME instead (installed by <see cref="KeyArrived"/>).
    /// <paramref name="unwrappedSecret"/>: this KEY-DIST's secret when <see cref="IsUnusable"/> already
    /// unwrapped it (32 octets), else empty and it is unwrapped here.
    /// </summary>
    private ReceiveResult OnKeyDistribution(GenerationKeys keys, KeyDistribution distribution, BindingUpdateKind kind, DateTimeOffset now,
        ReadOnlySpan<byte> unwrappedSecret, bool lateInitAnswer = false)
    {
        bool answersInit = (_awaitingInit && kind == BindingUpdateKind.Init) || lateInitAnswer;
        var generation = new Generation(distribution.Generation);
        if (!answersInit && generation <= _ring.Newest.Generation)
        {
            return Accepted(keys);
        }
        var suite = (EspSuite)distribution.Suite;
        var spiMnToHa = new Spi(distribution.SpiMnToHa);
        var spiHaToMn = new Spi(distribution.SpiHaToMn);
        if ((distribution.IsKeyReference && _resolver is null) || generation.IsInitialization || !EspSuites.IsDefined(suite)
            || !_ring.CanInstall(spiMnToHa, spiHaToMn, afterInit: answersInit))
        {
            return Dropped(DropReason.KeyDistributionRejected, keys);
        }
        if (distribution.IsKeyReference)
        {
            return BeginKeyFetch(keys, distribution, generation, spiMnToHa, spiHaToMn, suite, answersInit, now);
        }
        Span<byte> secret = stackalloc byte[KeyWrap.WrappedLength];
        try
        {
            scoped ReadOnlySpan<byte> key = unwrappedSecret;
            if (key.Length != KeyLengths.Secret)
            {
                if (!KeyWrap.TryUnwrap(_kek, distribution.WrappedKey, secret, out int written).IsOk || written != KeyLengths.Secret)
                {
                    return Dropped(DropReason.KeyDistributionRejected, keys);
                }
                key = secret[..KeyLengths.Secret];
            }
            // A wrapped key supersedes a reference still being fetched (e.g. the HA fell back to a local key).
            _fetch = null;
            Install(generation, key, spiMnToHa, spiHaToMn, suite, answersInit, now);
            return Accepted(keys);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>
    /// True for a KEY-DIST that <see cref="OnKeyDistribution"/> would reject (KeyDistributionRejected):
    /// not a duplicate, but IK, an unknown suite, SPIs this ring cannot install, a key reference
    /// without a resolver, or a wrapped key that does not unwrap under the KEK to 32 octets.
    /// A usable wrapped key is left unwrapped in <paramref name="secret"/> (<paramref name="unwrapped"/>
    /// true; the caller zeroes it) so the install does not unwrap it again.
    /// </summary>
    private bool IsUnusable(in KeyDistribution distribution, bool answersInit, Span<byte> secret, out bool unwrapped)
    {
        unwrapped = false;
        var generation = new Generation(distribution.Generation);
        if (!answersInit && generation <= _ring.Newest.Generation)
        {
            return false;
        }
        if ((distribution.IsKeyReference && _resolver is null) || generation.IsInitialization || !EspSuites.IsDefined((EspSuite)distribution.Suite)
            || !_ring.CanInstall(new Spi(distribution.SpiMnToHa), new Spi(distribution.SpiHaToMn), afterInit: answersInit))
        {
            return true;
        }
        if (distribution.IsKeyReference)
        {
            return false;
        }
        unwrapped = KeyWrap.TryUnwrap(_kek, distribution.WrappedKey, secret, out int written).IsOk && written == KeyLengths.Secret;
        return !unwrapped;
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
            _awaitingInit = false;
            Counters.Inits++;
        }
        else
        {
            _ring.InstallNext(installed);
            Counters.Updates++;
        }
        _keyRetryAt = null;
        _rekeyDueAt = _options.RekeyInterval is { } interval ? now + interval : null;
        // Stored before any packet under the new generation can leave.
        Persist();
        Raise(ProtocolEventKind.KeyInstalled, installed, 0);
    }

    /// <summary>
    /// True for an accepted BA that answers a BU of the last completed init exchange with a
    /// KEY-DIST newer than anything held, while no init is pending.
    /// </summary>
    private bool IsLateInitAnswer(BindingAcknowledgement ba, out KeyDistribution distribution)
    {
        distribution = default;
        return !_awaitingInit && ba.IsAccepted && _lastInit is { } range
            && !SequenceNumber.IsNewer(range.First, ba.Sequence) && !SequenceNumber.IsNewer(ba.Sequence, range.Last)
            && ba.Options.TryGetKeyDistribution(_options.VendorId, out distribution)
            && new Generation(distribution.Generation) > _ring.Newest.Generation;
    }

    private ReceiveResult Accepted(GenerationKeys keys) =>
        new(ReceiveOutcome.Control, DropReason.None, HomeAddress, keys.Generation, 0);

    private ReceiveResult Dropped(DropReason reason, GenerationKeys? keys = null)
    {
        Counters.Drop(reason);
        return ReceiveResult.Drop(reason, HomeAddress, keys?.Generation ?? default);
    }
}
