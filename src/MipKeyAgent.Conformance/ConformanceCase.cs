namespace MipKeyAgent.Conformance;

/// <summary>The outcome of one case.</summary>
internal enum Verdict
{
    /// <summary>The target did what the clause says.</summary>
    Pass,
    /// <summary>The target did something else; the evidence shows what, and what was expected instead.</summary>
    Fail,
    /// <summary>The case could not judge (a precondition the target or the run does not meet, e.g. no restart hook).</summary>
    Inconclusive,
}

/// <summary>Which agent a case drives: the tester plays the other side.</summary>
internal enum TargetRole
{
    HomeAgent,
    MobileNode,
}

/// <summary>
/// One conformance case: an id (<c>HA-INIT-01</c>), the clause it checks (PROTOCOL.md section and
/// rule, and the RFC section where one rules), whether a conforming target must pass it, the steps
/// as a reader would do them by hand, and the code that does them against a live target.
/// </summary>
/// <param name="Exclusive">Runs alone (restarts or floods the target, or waits on the target's timers),
/// after the cases that may run side by side.</param>
internal sealed record ConformanceCase(
    string Id,
    TargetRole Role,
    string Title,
    string Clause,
    bool Required,
    IReadOnlyList<string> Steps,
    Func<CaseContext, Task> Run,
    bool Exclusive = false);

/// <summary>Thrown by a case when the target did not do what the clause says.</summary>
internal sealed class CaseFailedException(string expected, string observed) : Exception($"expected {expected}; observed {observed}")
{
    public string Expected { get; } = expected;

    public string Observed { get; } = observed;
}

/// <summary>Thrown by a case that cannot judge the target.</summary>
internal sealed class CaseInconclusiveException(string reason) : Exception(reason);
