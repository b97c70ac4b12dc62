using System.Globalization;
using System.Text.Json.Serialization;
using MipKeyAgent.Cli.Capture;
using MipKeyAgent.Cli.Replay;

namespace MipKeyAgent.Cli.Report;

/// <summary>What a row of the ladder diagram shows beyond its message (bits of <see cref="LadderReport.Flags"/>).</summary>
[Flags]
internal enum LadderFlags
{
    None = 0,
    /// <summary>A Binding Update repeating the node's previous request while that one was still unanswered (no BA in between).</summary>
    Retransmission = 1,
    /// <summary>KEY-RESEND-REQ, or a KEY-DIST of a generation (same SPIs) the node was sent before.</summary>
    Resend = 2,
    /// <summary>An anomaly of the replay points at this row, or its verdict is not ok.</summary>
    Anomaly = 4,
    /// <summary>A BA carrying KEY-DIST.</summary>
    KeyDistribution = 8,
}

/// <summary>What kind of datagram a row is (the arrow's style).</summary>
internal enum LadderKind
{
    BindingUpdate = 0,
    BindingAcknowledgement = 1,
    BindingRefreshRequest = 2,
    Data = 3,
    Other = 4,
}

/// <summary>One anomaly of the report, with the row it belongs to (-1: none).</summary>
internal sealed record LadderAnomaly(
    [property: JsonPropertyName("t")] long? Microseconds,
    [property: JsonPropertyName("node")] string Node,
    [property: JsonPropertyName("what")] string What,
    [property: JsonPropertyName("row")] int Row);

/// <summary>
/// One dynamic generation of one node over the timeline: the row of its first KEY-DIST (issued), of the
/// node's first valid datagram under it (confirmed, PROTOCOL.md section 5) and of the KEY-DIST that made
/// the HA drop it (two generations kept, section 4; an init keeps only the new one, section 5 rule 1); -1: not (yet).
/// </summary>
internal sealed record LadderGeneration(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("gen")] string Generation,
    [property: JsonPropertyName("spi")] string Spis,
    [property: JsonPropertyName("issued")] int Issued,
    [property: JsonPropertyName("confirmed")] int Confirmed,
    [property: JsonPropertyName("dropped")] int Dropped);

/// <summary>
/// The model of an HTML ladder report, built from a replay's timeline (<see cref="ReplayReport"/>, the
/// rows the text table prints): columns of numbers with string tables, so 100,000 datagrams stay a few
/// megabytes of JSON. Holds names, SPIs, sequence numbers and verdicts; never key bytes (the replay rows
/// carry none).
/// </summary>
internal sealed class LadderReport
{
    [JsonPropertyName("title")] public required string Title { get; init; }
    [JsonPropertyName("summary")] public required string Summary { get; init; }
    /// <summary>Lane 0 is the home agent; node i is lane i + 1.</summary>
    [JsonPropertyName("nodes")] public required IReadOnlyList<string> Nodes { get; init; }
    [JsonPropertyName("strings")] public required IReadOnlyList<string> Strings { get; init; }
    [JsonPropertyName("t")] public required IReadOnlyList<long> Microseconds { get; init; }
    /// <summary>0 unknown, 1 MN->HA, 2 HA->MN (<see cref="CaptureDirection"/>).</summary>
    [JsonPropertyName("dir")] public required IReadOnlyList<int> Direction { get; init; }
    [JsonPropertyName("node")] public required IReadOnlyList<int> Node { get; init; }
    [JsonPropertyName("kind")] public required IReadOnlyList<int> Kind { get; init; }
    /// <summary>Indexes into <see cref="Strings"/>.</summary>
    [JsonPropertyName("msg")] public required IReadOnlyList<int> Message { get; init; }
    [JsonPropertyName("gen")] public required IReadOnlyList<int> Generation { get; init; }
    [JsonPropertyName("spi")] public required IReadOnlyList<uint> Spi { get; init; }
    [JsonPropertyName("verdict")] public required IReadOnlyList<int> Verdict { get; init; }
    [JsonPropertyName("eng")] public required IReadOnlyList<int> Engine { get; init; }
    [JsonPropertyName("flags")] public required IReadOnlyList<int> Flags { get; init; }
    [JsonPropertyName("anomalies")] public required IReadOnlyList<LadderAnomaly> Anomalies { get; init; }
    [JsonPropertyName("generations")] public required IReadOnlyList<LadderGeneration> Generations { get; init; }

    [JsonIgnore] public int Count => Microseconds.Count;

    // A data SA's SPI is its control SPI + 2^31 (PROTOCOL.md section 3).
    private const uint DataSpiBit = 0x8000_0000u;

    public static LadderReport From(ReplayReport replay, string title)
    {
        ArgumentNullException.ThrowIfNull(replay);
        var strings = new StringTable();
        var nodes = new List<string>();
        var nodeIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        int n = replay.Rows.Count;
        var t = new long[n];
        var dir = new int[n];
        var node = new int[n];
        var kind = new int[n];
        var msg = new int[n];
        var gen = new int[n];
        var spi = new uint[n];
        var verdict = new int[n];
        var eng = new int[n];
        var flags = new int[n];
        var exchanges = new ExchangeTracker();
        for (int i = 0; i < n; i++)
        {
            var row = replay.Rows[i];
            if (!nodeIndex.TryGetValue(row.Node, out int lane))
            {
                nodeIndex[row.Node] = lane = nodes.Count;
                nodes.Add(row.Node);
            }
            t[i] = row.Time.Ticks / TimeSpan.TicksPerMicrosecond;
            dir[i] = (int)row.Direction;
            node[i] = lane;
            kind[i] = (int)KindOf(row.Message);
            msg[i] = strings.Of(row.Message);
            gen[i] = strings.Of(row.Generation);
            spi[i] = row.Spi;
            verdict[i] = (int)row.Verdict;
            eng[i] = strings.Of(row.Engine);
            flags[i] = (int)exchanges.Flags(row, i, lane, (LadderKind)kind[i]);
        }
        var anomalies = AnomaliesOf(replay, flags);

        return new LadderReport
        {
            Title = title,
            Summary = string.Create(CultureInfo.InvariantCulture,
                $"{n} datagrams, {nodes.Count} nodes, {replay.SecurityAssociations.Count} SAs known, engine answers {replay.EngineAnswers}, matching the capture {replay.MatchedAnswers}, {anomalies.Count} anomalies"),
            Nodes = nodes,
            Strings = strings.Values,
            Microseconds = t,
            Direction = dir,
            Node = node,
            Kind = kind,
            Message = msg,
            Generation = gen,
            Spi = spi,
            Verdict = verdict,
            Engine = eng,
            Flags = flags,
            Anomalies = anomalies,
            Generations = [.. exchanges.Lanes.Select(g => new LadderGeneration(g.Node, g.Generation, g.Spis, g.Issued, g.Confirmed, g.Dropped))],
        };
    }

    // Each anomaly of the replay, linked to its row (or the nearest row of its node), which is then flagged.
    private static List<LadderAnomaly> AnomaliesOf(ReplayReport replay, int[] flags)
    {
        var anomalies = new List<LadderAnomaly>(replay.Anomalies.Count);
        foreach (var anomaly in replay.Anomalies)
        {
            int row = anomaly.Time is { } at ? RowOf(replay.Rows, at, anomaly.Node) : -1;
            if (row >= 0)
            {
                flags[row] |= (int)LadderFlags.Anomaly;
            }
            anomalies.Add(new LadderAnomaly(anomaly.Time is { } time ? time.Ticks / TimeSpan.TicksPerMicrosecond : null, anomaly.Node, anomaly.What, row));
        }
        return anomalies;
    }

    /// <summary>
    /// Follows each node's exchanges row by row: unanswered requests (a retransmission repeats one), KEY-DISTs
    /// already sent (a resend repeats one), and the generations issued, confirmed and dropped per lane.
    /// </summary>
    private sealed class ExchangeTracker
    {
        private readonly Dictionary<int, string> _unanswered = [];
        private readonly HashSet<(int Node, string Generation, string Spis)> _distributed = [];
        private readonly Dictionary<uint, MutableGeneration> _unconfirmed = [];
        private readonly Dictionary<int, List<MutableGeneration>> _live = [];
        private readonly Dictionary<int, string> _lastInitSequence = [];

        public List<MutableGeneration> Lanes { get; } = [];

        public LadderFlags Flags(ReplayRow row, int i, int lane, LadderKind kind)
        {
            var f = LadderFlags.None;
            if (row.Verdict != CaptureVerdict.Ok || row.Engine.StartsWith("differs", StringComparison.Ordinal)
                || row.Engine.StartsWith("not sent", StringComparison.Ordinal))
            {
                f |= LadderFlags.Anomaly;
            }
            // The node's first valid datagram under a generation (control or data SA) confirms it (PROTOCOL.md section 5).
            if (row.Verdict == CaptureVerdict.Ok && row.Direction == CaptureDirection.MnToHa
                && _unconfirmed.Remove(row.Spi & ~DataSpiBit, out var confirmed) && confirmed.Node == lane && confirmed.Dropped < 0)
            {
                confirmed.Confirmed = i;
            }
            if (kind == LadderKind.BindingUpdate && row.Direction == CaptureDirection.MnToHa)
            {
                f |= Request(row.Message, lane);
            }
            else if (kind == LadderKind.BindingAcknowledgement && row.Direction == CaptureDirection.HaToMn)
            {
                f |= Answer(row.Message, lane, i);
            }
            return f;
        }

        private LadderFlags Request(string message, int lane)
        {
            var f = LadderFlags.None;
            // The same request again (after "BU seq N") while the last one is unanswered.
            var request = RequestOf(message);
            if (_unanswered.TryGetValue(lane, out var previous) && previous == request)
            {
                f |= LadderFlags.Retransmission;
            }
            _unanswered[lane] = request;
            if (message.Contains("KEY-RESEND-REQ", StringComparison.Ordinal))
            {
                f |= LadderFlags.Resend;
            }
            if (message.Contains("KEY-INIT-REQ", StringComparison.Ordinal))
            {
                _lastInitSequence[lane] = SequenceOf(message);
            }
            return f;
        }

        private LadderFlags Answer(string message, int lane, int i)
        {
            _unanswered.Remove(lane);
            if (KeyDistributionOf(message) is not { } kd)
            {
                return LadderFlags.None;
            }
            if (!_distributed.Add((lane, kd.Generation, kd.Spis)))
            {
                return LadderFlags.KeyDistribution | LadderFlags.Resend;
            }
            bool init = _lastInitSequence.TryGetValue(lane, out var s) && s == SequenceOf(message);
            if (!_live.TryGetValue(lane, out var held))
            {
                _live[lane] = held = [];
            }
            var issued = Issue(Lanes, held, lane, kd.Generation, kd.Spis, i, init);
            _unconfirmed[issued.SpiMnToHa] = issued;
            return LadderFlags.KeyDistribution;
        }
    }

    public static LadderKind KindOf(string message) =>
        message.StartsWith("BU ", StringComparison.Ordinal) ? LadderKind.BindingUpdate
        : message.StartsWith("BA ", StringComparison.Ordinal) ? LadderKind.BindingAcknowledgement
        : message == "BRR" ? LadderKind.BindingRefreshRequest
        : message == "data" ? LadderKind.Data
        : LadderKind.Other;

    // The HA keeps two dynamic generations (PROTOCOL.md section 4): issuing g drops g-2; an init's KEY-DIST
    // (section 5 rule 1), or a number not above the ones before (an HA that lost its state), drops all older ones.
    private static MutableGeneration Issue(List<MutableGeneration> lanes, List<MutableGeneration> live, int node, string generation, string spis, int row,
        bool init)
    {
        uint number = NumberOf(generation);
        foreach (var g in live)
        {
            uint older = NumberOf(g.Generation);
            if (init || older >= number || older + 2 <= number)
            {
                g.Dropped = row;
            }
        }
        live.RemoveAll(g => g.Dropped >= 0);
        var issued = new MutableGeneration(node, generation, spis, ParseSpi(spis), row);
        lanes.Add(issued);
        live.Add(issued);
        return issued;
    }

    private static uint NumberOf(string generation) =>
        generation.Length > 1 && uint.TryParse(generation.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out uint v) ? v : 0;

    private static uint ParseSpi(string spis)
    {
        int slash = spis.IndexOf('/', StringComparison.Ordinal);
        return uint.TryParse(slash < 0 ? spis : spis[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out uint v) ? v : 0;
    }

    // "BA seq 7 status 0 KEY-DIST g1 spi 4660/4661": the generation and its SPIs.
    private static (string Generation, string Spis)? KeyDistributionOf(string message)
    {
        var words = message.Split(' ');
        int at = Array.IndexOf(words, "KEY-DIST");
        if (at < 0 || at + 3 >= words.Length || words[at + 2] != "spi")
        {
            return null;
        }
        return (words[at + 1], words[at + 3]);
    }

    private static string RequestOf(string message)
    {
        var words = message.Split(' ');
        return words.Length > 2 && words[1] == "seq" ? string.Join(' ', words.Skip(3)) : message;
    }

    private static string SequenceOf(string message)
    {
        var words = message.Split(' ');
        return words.Length > 2 && words[1] == "seq" ? words[2] : "";
    }

    /// <summary>The row an anomaly at <paramref name="time"/> about <paramref name="node"/> belongs to: same time and node, else the nearest row in time.</summary>
    private static int RowOf(IReadOnlyList<ReplayRow> rows, TimeSpan time, string node)
    {
        if (rows.Count == 0)
        {
            return -1;
        }
        int lo = 0, hi = rows.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (rows[mid].Time < time)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        for (int i = lo; i < rows.Count && rows[i].Time == time; i++)
        {
            if (rows[i].Node == node)
            {
                return i;
            }
        }
        if (lo >= rows.Count)
        {
            return rows.Count - 1;
        }
        return lo > 0 && time - rows[lo - 1].Time < rows[lo].Time - time ? lo - 1 : lo;
    }

    private sealed class MutableGeneration(int node, string generation, string spis, uint spiMnToHa, int issued)
    {
        public int Node { get; } = node;
        public string Generation { get; } = generation;
        public string Spis { get; } = spis;
        public uint SpiMnToHa { get; } = spiMnToHa;
        public int Issued { get; } = issued;
        public int Confirmed { get; set; } = -1;
        public int Dropped { get; set; } = -1;
    }

    private sealed class StringTable
    {
        private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
        private readonly List<string> _values = [];

        public IReadOnlyList<string> Values => _values;

        public int Of(string value)
        {
            if (!_index.TryGetValue(value, out int i))
            {
                _index[value] = i = _values.Count;
                _values.Add(value);
            }
            return i;
        }
    }
}
