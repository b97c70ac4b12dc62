using System.Text;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance;

/// <summary>What KEY-DIST said (PROTOCOL.md section 1), copied out of the datagram; <see cref="Secret"/> once unwrapped.</summary>
internal sealed record KeyDistributionSeen(uint Generation, byte Suite, KeyDistributionFlags Flags, uint SpiMnToHa, uint SpiHaToMn,
    uint LifetimeSeconds, byte[]? Secret, Guid KeyId, string? KmeIdentifier)
{
    public bool IsKeyReference => (Flags & KeyDistributionFlags.KeyReference) != 0;

    public override string ToString() =>
        $"KEY-DIST(g{Generation}, suite {Suite}, SPIs {SpiMnToHa}/{SpiHaToMn}, lifetime {LifetimeSeconds} s{(IsKeyReference ? $", key reference {KeyId}" : "")})";
}

/// <summary>
/// One datagram from the target as the tester read it: which of the node's generations opened
/// it, the Mobility Header message or the tunnelled packet inside, and every way it broke the
/// wire contract (<see cref="Problems"/>: a bad checksum, a misaligned option, a reused counter...).
/// </summary>
internal sealed class Reply
{
    public required byte[] Datagram { get; init; }

    public required DateTimeOffset Time { get; init; }

    public uint Spi { get; init; }

    public uint EspSequence { get; init; }

    /// <summary>The generation whose SA opened the datagram; null when none did.</summary>
    public HeldGeneration? Under { get; init; }

    public bool IsData { get; init; }

    /// <summary>The tunnelled packet of a data datagram.</summary>
    public byte[]? Inner { get; init; }

    public MobilityHeaderType? Type { get; init; }

    public BindingAckStatus Status { get; init; }

    public ushort Sequence { get; init; }

    public ushort LifetimeUnits { get; init; }

    public KeyDistributionSeen? KeyDistribution { get; init; }

    public KeyStatus? KeyStatus { get; init; }

    public List<string> Problems { get; } = [];

    public bool IsBindingAck => Type == MobilityHeaderType.BindingAcknowledgement;

    public bool IsRefreshRequest => Type == MobilityHeaderType.BindingRefreshRequest;

    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append("ESP SPI ").Append(Spi).Append(" seq ").Append(EspSequence);
        text.Append(Under is null ? " (no SA of the node opens it)" : $" under {Under.Name}");
        if (IsData)
        {
            text.Append(": tunnelled packet, ").Append(Inner?.Length ?? 0).Append(" octets");
        }
        else if (IsBindingAck)
        {
            text.Append(": BA status ").Append((byte)Status).Append(" seq ").Append(Sequence).Append(" lifetime ").Append(LifetimeUnits * 4).Append(" s");
        }
        else if (IsRefreshRequest)
        {
            text.Append(": Binding Refresh Request");
        }
        else if (Type is { } type)
        {
            text.Append(": MH type ").Append((byte)type);
        }
        if (KeyDistribution is { } dist)
        {
            text.Append(", ").Append(dist);
        }
        if (KeyStatus is { } status)
        {
            text.Append(", KEY-STATUS(code ").Append((byte)status.Code).Append(", retry after ").Append(status.RetryAfterSeconds).Append(" s)");
        }
        foreach (var problem in Problems)
        {
            text.Append("; PROBLEM: ").Append(problem);
        }
        return text.ToString();
    }
}
