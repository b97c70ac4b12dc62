using MipKeyAgent.Cli.Capture;
using MipKeyAgent.Cli.Demo;
using MipKeyAgent.Esp;

namespace MipKeyAgent.Cli.Replay;

/// <summary>One line of the replay timeline.</summary>
/// <param name="Time">Since the first record of the capture.</param>
/// <param name="Node">The provisioning label of the mobile node, or its home address.</param>
/// <param name="Engine">What the replayed engine did: for MN->HA its result, for HA->MN control whether its own answer matched.</param>
internal sealed record ReplayRow(TimeSpan Time, CaptureDirection Direction, string Node, string Message, string Generation, uint Spi,
    CaptureVerdict Verdict, string Engine);

/// <summary>Something in the capture a healthy exchange would not show.</summary>
internal sealed record ReplayAnomaly(TimeSpan? Time, string Node, string What);

/// <summary>The result of replaying one capture.</summary>
internal sealed record ReplayReport(
    IReadOnlyList<ReplayRow> Rows,
    IReadOnlyList<ReplayAnomaly> Anomalies,
    IReadOnlyList<SecurityAssociationKeys> SecurityAssociations,
    int EngineAnswers,
    int MatchedAnswers,
    int OutsideProtocol = 0);
