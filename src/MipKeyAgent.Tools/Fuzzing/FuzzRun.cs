using System.Globalization;
using System.Text;

using MipKeyAgent.Protocol;

namespace MipKeyAgent.Tools.Fuzzing;

/// <summary>The outcome of <see cref="EngineFuzzer.Run"/>.</summary>
/// <param name="Inputs">Fuzz inputs fed to the engines.</param>
/// <param name="Accepted">Inputs an engine processed (whole-datagram mutants: only when a mutation left the packet intact and unseen).</param>
/// <param name="Dropped">Counted drops by reason.</param>
/// <param name="Exceptions">Inputs that made an engine throw (each is a bug).</param>
/// <param name="StateChanges">Inputs that broke a state check: an invalid or replayed input that changed state, a dropped
/// re-sealed input that changed more than its window, an accepted re-sealed input that broke an engine invariant (each is a bug).</param>
/// <param name="Failures">One line per failure; with a crash directory, the file each was saved to.</param>
internal sealed record FuzzRun(
    int Inputs,
    int Accepted,
    IReadOnlyDictionary<DropReason, int> Dropped,
    int Exceptions,
    int StateChanges,
    IReadOnlyList<string> Failures)
{
    public bool Passed => Exceptions == 0 && StateChanges == 0;

    /// <summary>Counts per mutation class (the classes that ran).</summary>
    public IReadOnlyList<FuzzClassStats> Classes { get; init; } = [];

    /// <summary>
    /// "fuzz: N inputs, A accepted, D dropped by reason (...), E exceptions, S state changes", then one
    /// line per class (<see cref="FuzzClassStats.ToString"/>).
    /// </summary>
    public override string ToString()
    {
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"fuzz: {Inputs} inputs, {Accepted} accepted, {Dropped.Values.Sum()} dropped by reason ({Reasons(Dropped)}), {Exceptions} exceptions, {StateChanges} state changes"));
        foreach (var stats in Classes)
        {
            text.Append('\n').Append("  ").Append(stats);
        }
        return text.ToString();
    }

    internal static string Reasons<T>(IReadOnlyDictionary<T, int> counts)
        where T : struct, Enum
    {
        var reasons = new StringBuilder();
        foreach (var (reason, count) in counts.OrderByDescending(p => p.Value).ThenBy(p => p.Key))
        {
            reasons.Append(reasons.Length == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"{reason} {count}");
        }
        return reasons.ToString();
    }
}

/// <summary>What one mutation class did in a run.</summary>
/// <param name="Name">"mutate" or "reseal".</param>
/// <param name="Inputs">Inputs of this class.</param>
/// <param name="ToHomeAgent">Of those, fed to the HA (the rest to the MN).</param>
/// <param name="Accepted">Accepted inputs by outcome (Control, Data, SequenceOutOfWindow).</param>
/// <param name="Dropped">Dropped inputs by reason.</param>
internal sealed record FuzzClassStats(
    string Name,
    int Inputs,
    int ToHomeAgent,
    IReadOnlyDictionary<ReceiveOutcome, int> Accepted,
    IReadOnlyDictionary<DropReason, int> Dropped)
{
    /// <summary>Drop reasons given before or by the Mobility Header parser (or the ESP layer).</summary>
    private static readonly DropReason[] BeforeDecision =
    [
        DropReason.Malformed, DropReason.NotHandled, DropReason.UnknownSpi, DropReason.GenerationNotReceivable,
        DropReason.AuthenticationFailed, DropReason.Replay, DropReason.BadChecksum, DropReason.RateLimited,
    ];

    /// <summary>
    /// Inputs that got past the Mobility Header parser to the decision table: accepted, or dropped by
    /// a decision (home address, epoch, generation, unexpected BA, KEY-DIST rejected, no binding).
    /// Malformed is counted as a parser drop although some come from option checks in the table.
    /// </summary>
    public int PastParsing => Accepted.Values.Sum() + Dropped.Where(p => !BeforeDecision.Contains(p.Key)).Sum(p => p.Value);

    /// <summary>"NAME: N inputs (ha H, mn M), A accepted (...), P past the Mobility Header parser, D dropped (...)".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: {Inputs} inputs (ha {ToHomeAgent}, mn {Inputs - ToHomeAgent}), {Accepted.Values.Sum()} accepted ({FuzzRun.Reasons(Accepted)}), " +
        $"{PastParsing} past the Mobility Header parser, {Dropped.Values.Sum()} dropped ({FuzzRun.Reasons(Dropped)})");
}

/// <summary>Counts of one class while a run goes.</summary>
internal sealed class FuzzClassCounts(string name)
{
    private readonly Dictionary<ReceiveOutcome, int> _accepted = [];
    private int _toHomeAgent;

    public int Inputs { get; private set; }

    public int Accepted => _accepted.Values.Sum();

    public Dictionary<DropReason, int> Dropped { get; } = [];

    /// <summary>Counts one input (<paramref name="result"/> null: the engine threw).</summary>
    public void Add(FuzzTarget target, ReceiveResult? result)
    {
        Inputs++;
        _toHomeAgent += target == FuzzTarget.HomeAgent ? 1 : 0;
        if (result is not { } r)
        {
            return;
        }
        if (r.IsDropped)
        {
            Dropped[r.Reason] = Dropped.GetValueOrDefault(r.Reason) + 1;
        }
        else
        {
            _accepted[r.Outcome] = _accepted.GetValueOrDefault(r.Outcome) + 1;
        }
    }

    public FuzzClassStats ToStats() => new(name, Inputs, _toHomeAgent, new Dictionary<ReceiveOutcome, int>(_accepted), new Dictionary<DropReason, int>(Dropped));
}
