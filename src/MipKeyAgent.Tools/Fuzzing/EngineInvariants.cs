using System.Globalization;
using System.Security.Cryptography;
using MipKeyAgent.Protocol.Keys;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>
/// The engine invariants the re-seal class checks after every accepted input. A re-sealed input
/// is authenticated (it is what a peer holding the key could send), so the decision table may act
/// on it; what no input may do is break these (PROTOCOL.md sections 3-6):
/// <list type="bullet">
/// <item>each side holds at most IK plus two dynamic generations, with distinct generation numbers and SPIs;</item>
/// <item>HA: two dynamic generations only as N-1 confirmed and N = N-1 + 1 (rule 5: never N+1 before N is confirmed);</item>
/// <item>HA: a generation number or SPI, once issued, never names a different secret (section 3), across the whole session;</item>
/// <item>HA: the binding view matches the key ring (newest, previous, confirmation, transmit key, highest issued),
/// and the SPI table holds exactly the four SPIs of each held generation, each naming that generation;</item>
/// <item>MN: the view matches the key ring; a generation still held keeps its secret; unless an init was pending the
/// newest generation only grows (a duplicate or older KEY-DIST is ignored; an init's answer may name any generation).</item>
/// </list>
/// Fingerprints (SHA-256 of the secret) are compared, never printed.
/// </summary>
internal sealed class EngineInvariants
{
    private readonly Dictionary<uint, string> _haGenerations = [];
    private readonly Dictionary<uint, string> _haSpis = [];
    private Dictionary<uint, string> _mnHeld = [];
    private ulong _mnEpoch;
    private bool _mnAwaitingInit;
    private Generation _mnNewest;

    public EngineInvariants(FuzzSession session)
    {
        if (Check(session) is { } violation)
        {
            throw new InvalidOperationException("the fresh fuzz session breaks an invariant: " + violation);
        }
    }

    /// <summary>The first invariant broken (and remembers the state for the next call), or null.</summary>
    public string? Check(FuzzSession session) => CheckHomeAgent(session) ?? CheckMobileNode(session);

    private string? CheckHomeAgent(FuzzSession session)
    {
        var ring = session.HomeAgent.GetKeyRing(FuzzSession.HomeAddress)!;
        var view = session.HomeAgent.GetNode(FuzzSession.HomeAddress)!;
        var held = ring.All().ToList();
        if (Common("ha", ring, held) is { } common)
        {
            return common;
        }
        if (ring.DynamicCount == 2 && (!ring.Previous!.Confirmed || ring.Newest.Generation.Value != ring.Previous.Generation.Value + 1))
        {
            return Text($"ha holds {ring.Newest.Generation} and {ring.Previous.Generation} (confirmed {ring.Previous.Confirmed}): N+1 before N was confirmed");
        }
        if (view.Newest != ring.Newest.Generation || view.Previous != ring.Previous?.Generation || view.NewestConfirmed != ring.Newest.Confirmed
            || view.Transmit != ring.Transmit.Generation || view.HighestIssued < view.Newest)
        {
            return Text($"ha binding view {view} does not match its key ring ({string.Join(", ", held)})");
        }
        if (session.HomeAgent.Spis.Count != 4 * held.Count)
        {
            return Text($"ha SPI table holds {session.HomeAgent.Spis.Count} SPIs for {held.Count} generations");
        }
        foreach (var keys in held)
        {
            foreach (var spi in new[] { keys.SpiMnToHa, keys.SpiHaToMn, keys.SpiMnToHa.Data, keys.SpiHaToMn.Data })
            {
                if (!session.HomeAgent.Spis.TryGet(spi.Value, out var entry) || !ReferenceEquals(entry.Keys, keys))
                {
                    return Text($"ha SPI table does not name {keys.Generation} for {spi}");
                }
            }
            string print = Fingerprint(keys);
            if (!Remember(_haGenerations, keys.Generation.Value, print))
            {
                return Text($"ha generation {keys.Generation} names a second secret");
            }
            if (!keys.Generation.IsInitialization && (!Remember(_haSpis, keys.SpiMnToHa.Value, print) || !Remember(_haSpis, keys.SpiHaToMn.Value, print)))
            {
                return Text($"ha SPI of {keys} reused for a different secret");
            }
        }
        return null;
    }

    private string? CheckMobileNode(FuzzSession session)
    {
        var ring = session.MobileNode.KeyRing;
        var view = session.MobileNode.View;
        var held = ring.All().ToList();
        if (Common("mn", ring, held) is { } common)
        {
            return common;
        }
        // While an init is pending the MN transmits under IK (PROTOCOL.md section 6, start).
        var transmit = view.AwaitingInit ? Generation.Initialization : ring.Transmit.Generation;
        if (view.Newest != ring.Newest.Generation || view.Previous != ring.Previous?.Generation || view.Transmit != transmit)
        {
            return Text($"mn view {view} does not match its key ring ({string.Join(", ", held)})");
        }
        var now = held.ToDictionary(k => k.Generation.Value, Fingerprint);
        foreach (var (generation, print) in now)
        {
            if (_mnHeld.TryGetValue(generation, out var before) && before != print)
            {
                return Text($"mn generation g{generation} replaced by a different secret while held");
            }
        }
        // An init's answer installs whatever generation the HA names (PROTOCOL.md section 6).
        bool reinitialized = view.InitEpoch != _mnEpoch || _mnAwaitingInit;
        if (!reinitialized && ring.Newest.Generation < _mnNewest && !ring.Newest.Generation.IsInitialization)
        {
            return Text($"mn newest generation went back from {_mnNewest} to {ring.Newest.Generation} without an init");
        }
        _mnHeld = now;
        _mnEpoch = view.InitEpoch;
        _mnAwaitingInit = view.AwaitingInit;
        _mnNewest = ring.Newest.Generation;
        return null;
    }

    private static string? Common(string side, KeyRing ring, List<GenerationKeys> held)
    {
        if (held.Count > 3 || ring.DynamicCount > 2 || !held[^1].Generation.IsInitialization)
        {
            return Text($"{side} holds {held.Count} generations ({string.Join(", ", held)}): more than IK + 2");
        }
        if (held.Select(k => k.Generation).Distinct().Count() != held.Count)
        {
            return Text($"{side} holds one generation number twice ({string.Join(", ", held)})");
        }
        var spis = held.SelectMany(k => new[] { k.SpiMnToHa.Value, k.SpiHaToMn.Value }).ToList();
        if (spis.Distinct().Count() != spis.Count)
        {
            return Text($"{side} holds one SPI twice ({string.Join(", ", held)})");
        }
        if (held.Any(k => k.IsDisposed))
        {
            return Text($"{side} holds a disposed generation ({string.Join(", ", held)})");
        }
        return null;
    }

    private static bool Remember(Dictionary<uint, string> map, uint key, string print)
    {
        if (map.TryGetValue(key, out var known))
        {
            return known == print;
        }
        map.Add(key, print);
        return true;
    }

    private static string Fingerprint(GenerationKeys keys) => Convert.ToHexString(SHA256.HashData(keys.Secret));

    private static string Text(FormattableString text) => "invariant: " + text.ToString(CultureInfo.InvariantCulture);
}
