using System.Buffers.Binary;
using System.Globalization;
using MipKeyAgent.Wire;

using MipKeyAgent.Protocol;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>What one replayed fuzz case did.</summary>
/// <param name="Result">The engine's result, when it returned.</param>
/// <param name="Exception">The exception's type and message, when it threw.</param>
/// <param name="StateChanged">The input changed state although it was not valid and new (or, re-sealed, although it was dropped).</param>
/// <param name="Invariant">Re-sealed and accepted: the engine invariant it broke (<see cref="EngineInvariants"/>).</param>
internal sealed record FuzzCaseResult(ReceiveResult? Result, string? Exception, bool StateChanged, string? Invariant = null)
{
    public bool Passed => Exception is null && !StateChanged && Invariant is null;
}

/// <summary>A case file's content (see <see cref="EngineFuzzer.ReadCaseFile"/>).</summary>
internal sealed record FuzzCase(FuzzTarget Target, byte[] Datagram, bool Resealed, IReadOnlyList<(FuzzTarget Target, byte[] Datagram)> Prefix,
    bool MobileNodeExchangeInFlight);

/// <summary>The fuzzer's mutation classes (<c>mipkey fuzz --class</c>).</summary>
[Flags]
internal enum FuzzClasses
{
    /// <summary>Whole recorded datagrams mutated (headers, ESP, ciphertext): exercises everything before and at the ICV check.</summary>
    Mutate = 1,
    /// <summary>
    /// A recorded control datagram decrypted, its Mobility Header mutated, re-sealed under a key the
    /// receiver holds with a fresh sequence number: exercises the Mobility Header and option parsers
    /// and the decision tables behind valid crypto.
    /// </summary>
    Reseal = 2,
    All = Mutate | Reseal,
}

/// <summary>
/// Feeds fuzz inputs derived from a recorded HA/MN exchange to both engines (see <see cref="FuzzSession"/>).
/// <para>Class <see cref="FuzzClasses.Mutate"/> (<see cref="DatagramMutator"/>): whole datagrams mutated. Checked:
/// no exception escapes, and an input changes no state (node view, key rings, replay windows,
/// counters other than the one drop counter it reports, datagrams sent) unless it verified and was
/// new, which for a mutant of an already delivered packet means a bug.</para>
/// <para>Class <see cref="FuzzClasses.Reseal"/> (<see cref="ResealFuzzer"/>): a decrypted Mobility Header mutated
/// and sealed again under a key the receiver holds, with a fresh ESP sequence number. Such an input
/// is authenticated: it is exactly what a peer holding that key could send, so "valid" means the
/// decision table may act on it. Checked: no exception escapes; a dropped input changes nothing but
/// its own drop counter and the replay window of the SA that opened it (which then includes its
/// sequence number, RFC 4303 section 3.4.3); an accepted input leaves both engines satisfying
/// <see cref="EngineInvariants"/> (at most IK + 2 generations, never N+1 before N is confirmed, no
/// generation number or SPI naming a second secret, binding view, key ring and SPI table consistent).</para>
/// The `mipkey fuzz` verb calls <see cref="Run"/>.
/// </summary>
internal static class EngineFuzzer
{
    internal const string CaseHeader = "# mipkey fuzz case v1";

    /// <summary>Share of the inputs that go to the re-seal class when both classes run.</summary>
    public const int ResealPercent = 20;

    /// <summary>
    /// Runs <paramref name="inputs"/> fuzz inputs from <paramref name="seed"/>: with both classes,
    /// about <see cref="ResealPercent"/> % re-sealed Mobility Header mutants, the rest whole-datagram
    /// mutants. Failing inputs are written to <paramref name="crashDirectory"/> (when given) as hex
    /// case files that <see cref="ReplayCase(string)"/> reads back.
    /// </summary>
    public static FuzzRun Run(int inputs, int seed, string? crashDirectory, FuzzClasses classes = FuzzClasses.All)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputs);
        if ((classes & FuzzClasses.All) == 0)
        {
            throw new ArgumentException("no fuzz class selected", nameof(classes));
        }
        var random = new Random(seed);
        var session = new FuzzSession();
        var corpus = session.Recorded.Select(r => r.Datagram).ToArray();
        var targets = session.Recorded.Select(r => r.Target).ToArray();
        var mutator = new DatagramMutator(random, corpus);
        var seen = NewSeen(session);
        var mutate = new FuzzClassCounts("mutate");
        using var reseal = new ResealFuzzer(random);
        var failures = new List<string>();
        int exceptions = 0;
        int stateChanges = 0;
        string baseline = EngineState.Capture(session);
        try
        {
            for (int i = 0; i < inputs; i++)
            {
                bool resealed = classes == FuzzClasses.Reseal || (classes == FuzzClasses.All && random.Next(100) < ResealPercent);
                if (resealed)
                {
                    var (target, input, outcome, prefix) = reseal.Next();
                    bool inFlight = reseal.ExchangeInFlight;
                    reseal.Counts.Add(target, outcome.Result);
                    if (!outcome.Passed)
                    {
                        exceptions += outcome.Exception is null ? 0 : 1;
                        stateChanges += outcome.Exception is null ? 1 : 0;
                        string what = outcome.Exception ?? outcome.Invariant ?? $"state change on a drop ({outcome.Result})";
                        failures.Add(Save(crashDirectory, seed, i, target, input, (inFlight ? "reseal (mn-exchange): " : "reseal: ") + what, prefix));
                        reseal.Reset();
                    }
                    continue;
                }
                int index = random.Next(corpus.Length);
                var mutantTarget = random.Next(7) == 0 ? Other(targets[index]) : targets[index];
                byte[] mutant = mutator.Mutate(index);
                var result = Feed(session, mutantTarget, mutant, baseline, seen);
                mutate.Add(mutantTarget, result.Result);
                if (!result.Passed)
                {
                    exceptions += result.Exception is null ? 0 : 1;
                    stateChanges += result.StateChanged ? 1 : 0;
                    string what = result.Exception ?? $"state change ({result.Result})";
                    failures.Add(Save(crashDirectory, seed, i, mutantTarget, mutant, what, []));
                    // Start over from a clean session: a failure may have left the engines inconsistent.
                    session.Dispose();
                    session = new FuzzSession();
                    seen = NewSeen(session);
                    baseline = EngineState.Capture(session);
                    continue;
                }
                if (!result.Result!.Value.IsDropped)
                {
                    baseline = EngineState.Capture(session);
                }
            }
        }
        finally
        {
            session.Dispose();
        }
        var both = new[] { mutate, reseal.Counts };
        var dropped = both.SelectMany(c => c.Dropped).GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Sum(p => p.Value));
        return new FuzzRun(inputs, both.Sum(c => c.Accepted), dropped, exceptions, stateChanges, failures)
        {
            Classes = [.. both.Where(c => c.Inputs > 0).Select(c => c.ToStats())],
        };
    }

    /// <summary>Replays a case file written by <see cref="Run"/> against a fresh session.</summary>
    public static FuzzCaseResult ReplayCase(string path)
    {
        var fuzzCase = ReadCaseFile(path);
        if (!fuzzCase.Resealed)
        {
            return ReplayCase(fuzzCase.Target, fuzzCase.Datagram);
        }
        using var session = new FuzzSession(mobileNodeExchangeInFlight: fuzzCase.MobileNodeExchangeInFlight);
        foreach (var (target, datagram) in fuzzCase.Prefix)
        {
            session.Feed(target, datagram);
        }
        return ResealFuzzer.Feed(session, fuzzCase.Target, fuzzCase.Datagram, new EngineInvariants(session));
    }

    /// <summary>Feeds one datagram to a fresh session's engine with the same checks as <see cref="Run"/>.</summary>
    public static FuzzCaseResult ReplayCase(FuzzTarget target, ReadOnlySpan<byte> datagram)
    {
        using var session = new FuzzSession();
        return Feed(session, target, datagram.ToArray(), EngineState.Capture(session), NewSeen(session));
    }

    /// <summary>Reads a case file: a header line naming the target, then the datagram in hex.</summary>
    public static (FuzzTarget Target, byte[] Datagram) ReadCase(string path)
    {
        var fuzzCase = ReadCaseFile(path);
        return (fuzzCase.Target, fuzzCase.Datagram);
    }

    /// <summary>
    /// Reads a case file: a header line naming the target (and <c>class=reseal</c> for a re-sealed
    /// input, <c>mn-exchange</c> when its session had the MN's update BU in flight), <c># prefix ha|mn HEX</c> lines (re-sealed inputs the session accepted before, fed
    /// first without checks), other comment lines, then the datagram in hex.
    /// </summary>
    internal static FuzzCase ReadCaseFile(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines.FirstOrDefault(l => l.StartsWith(CaseHeader, StringComparison.Ordinal))
            ?? throw new FormatException($"{path}: no '{CaseHeader}' line");
        var prefix = new List<(FuzzTarget, byte[])>();
        foreach (var line in lines.Where(l => l.StartsWith(PrefixLine, StringComparison.Ordinal)))
        {
            var parts = line[PrefixLine.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2)
            {
                throw new FormatException($"{path}: bad prefix line '{line}'");
            }
            prefix.Add((parts[0] == "mn" ? FuzzTarget.MobileNode : FuzzTarget.HomeAgent, Convert.FromHexString(parts[1])));
        }
        var target = header.Contains("target=mn", StringComparison.Ordinal) ? FuzzTarget.MobileNode : FuzzTarget.HomeAgent;
        string hex = string.Concat(lines.Where(l => !l.StartsWith('#')).Select(l => l.Trim()));
        return new FuzzCase(target, Convert.FromHexString(hex), header.Contains("class=reseal", StringComparison.Ordinal), prefix,
            header.Contains(" mn-exchange", StringComparison.Ordinal));
    }

    private const string PrefixLine = "# prefix ";

    internal static FuzzCaseResult Feed(FuzzSession session, FuzzTarget target, byte[] input, string baseline, HashSet<(FuzzTarget, uint, uint)> seen)
    {
        if (FeedCatching(session, target, input, out var result, out bool countedOnce) is { } threw)
        {
            return threw;
        }
        if (result.IsDropped)
        {
            // A drop moves exactly its own counter and nothing else.
            return new FuzzCaseResult(result, null, !countedOnce || EngineState.Capture(session) != baseline);
        }
        // Accepted: legitimate only when the ESP packet verified (it did, or it would have been
        // dropped) and its sequence number was never delivered on that SPI before.
        bool isNew = TryEspIdentity(input, out uint spi, out uint sequence) && seen.Add((target, spi, sequence));
        return new FuzzCaseResult(result, null, !isNew);
    }

    /// <summary>
    /// Feeds one input to <paramref name="target"/>. An exception is the finding, returned as the
    /// case's result; otherwise null, with the engine's result and whether the target's drop total
    /// moved by exactly one.
    /// </summary>
    internal static FuzzCaseResult? FeedCatching(FuzzSession session, FuzzTarget target, byte[] input, out ReceiveResult result, out bool countedOnce)
    {
        var counters = target == FuzzTarget.HomeAgent ? session.HomeAgent.Counters : session.MobileNode.Counters;
        long droppedBefore = counters.DroppedTotal;
        try
        {
            result = session.Feed(target, input);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            result = default;
            countedOnce = false;
            return new FuzzCaseResult(null, $"{e.GetType().Name}: {e.Message}", false);
        }
        countedOnce = counters.DroppedTotal == droppedBefore + 1;
        return null;
    }

    internal static HashSet<(FuzzTarget, uint, uint)> NewSeen(FuzzSession session)
    {
        var seen = new HashSet<(FuzzTarget, uint, uint)>();
        foreach (var (datagram, target) in session.Recorded)
        {
            if (TryEspIdentity(datagram, out uint spi, out uint sequence))
            {
                seen.Add((target, spi, sequence));
            }
        }
        return seen;
    }

    internal static bool TryEspIdentity(ReadOnlySpan<byte> datagram, out uint spi, out uint sequence)
    {
        spi = sequence = 0;
        if (!Ipv6Datagram.TryParse(datagram, out var parsed).IsOk || parsed.UpperProtocol != IpProtocol.Esp || parsed.UpperLength < 8)
        {
            return false;
        }
        var esp = parsed.GetUpper(datagram);
        spi = BinaryPrimitives.ReadUInt32BigEndian(esp);
        sequence = BinaryPrimitives.ReadUInt32BigEndian(esp[4..]);
        return true;
    }

    private static string ResealTokens(string what) =>
        what.StartsWith("reseal (mn-exchange):", StringComparison.Ordinal) ? " class=reseal mn-exchange"
        : what.StartsWith("reseal:", StringComparison.Ordinal) ? " class=reseal" : "";

    private static string Name(FuzzTarget target) => target == FuzzTarget.HomeAgent ? "ha" : "mn";

    internal static FuzzTarget Other(FuzzTarget target) => target == FuzzTarget.HomeAgent ? FuzzTarget.MobileNode : FuzzTarget.HomeAgent;

    private static string Save(string? directory, int seed, int index, FuzzTarget target, byte[] input, string what,
        IReadOnlyList<(FuzzTarget Target, byte[] Datagram)> prefix)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"seed {seed} input {index} -> {(target == FuzzTarget.HomeAgent ? "ha" : "mn")}: {what}");
        if (directory is null)
        {
            return line;
        }
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"case-{seed}-{index}.hex"));
        var hex = Convert.ToHexStringLower(input);
        var lines = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture,
                $"{CaseHeader} target={Name(target)}{ResealTokens(what)} seed={seed} input={index}"),
            "# " + what.ReplaceLineEndings(" "),
        };
        lines.AddRange(prefix.Select(p => PrefixLine + Name(p.Target) + " " + Convert.ToHexStringLower(p.Datagram)));
        for (int i = 0; i < hex.Length; i += 64)
        {
            lines.Add(hex.Substring(i, Math.Min(64, hex.Length - i)));
        }
        File.WriteAllLines(path, lines);
        return line + " saved to " + path;
    }
}
