using MipKeyAgent.Esp;

namespace MipKeyAgent.Conformance;

/// <summary>Which way an evidence datagram went, or a note of the tester's.</summary>
internal enum EvidenceDirection
{
    ToTarget,
    FromTarget,
    Note,
}

/// <summary>One datagram of a case (its bytes, and what the tester read in it, decrypted) or a note.</summary>
internal sealed record EvidenceEntry(DateTimeOffset Time, EvidenceDirection Direction, byte[]? Datagram, string Text);


/// <summary>The verdict of one case with its evidence.</summary>
internal sealed class CaseResult
{
    public required ConformanceCase Case { get; init; }

    public required Verdict Verdict { get; init; }

    /// <summary>Why the case failed or was inconclusive; empty on a pass.</summary>
    public required string Message { get; init; }

    /// <summary>On a failure: what the clause wanted instead.</summary>
    public string? Expected { get; init; }

    public required IReadOnlyList<EvidenceEntry> Evidence { get; init; }

    public required IReadOnlyList<SecurityAssociationKeys> SecurityAssociations { get; init; }

    public required TimeSpan Duration { get; init; }

    public bool FailsRun => Verdict == Verdict.Fail || (Case.Required && Verdict != Verdict.Pass);
}
