using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Cli.Hosting;

/// <summary>
/// Structured log lines of the agents (source-generated). Key events carry numbers and SPIs,
/// never key bytes (PROTOCOL.md section 3).
/// </summary>
internal static partial class AgentLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "{Node} {Kind} generation {Generation} spi mn->ha {SpiMnToHa} ha->mn {SpiHaToMn} epoch {InitEpoch} seq {Sequence}")]
    public static partial void KeyEvent(ILogger logger, string node, ProtocolEventKind kind, Generation generation, Spi spiMnToHa, Spi spiHaToMn,
        ulong initEpoch, ushort sequence);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "dropped a datagram from {Node}: {Reason} (generation {Generation})")]
    public static partial void Dropped(ILogger logger, string node, DropReason reason, Generation generation);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information,
        Message = "dropped {Count} more datagrams: {Reason} (last from {Node}, generation {Generation}); drop lines are limited to one per reason per {IntervalSeconds} s")]
    public static partial void DropsSuppressed(ILogger logger, long count, DropReason reason, string node, Generation generation, double intervalSeconds);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "ignored a datagram: {Reason}")]
    public static partial void Ignored(ILogger logger, DropReason reason);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "{Role} started on {Transport}: {Configuration}")]
    public static partial void Started(ILogger logger, string role, string transport, string configuration);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "{Role} stopping; counters: {Counters}")]
    public static partial void Stopping(ILogger logger, string role, ProtocolCounters counters);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "--volatile: bindings are kept in memory only (a restart makes every node " +
        "re-initialize); the initialization keys' ESP counter reservations are kept in {CounterFile} (PROTOCOL.md section 8.1)")]
    public static partial void VolatileStore(ILogger logger, string counterFile);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "{Notice}")]
    public static partial void StoreAnchorNotice(ILogger logger, string notice);

    [LoggerMessage(EventId = 32, Level = LogLevel.Error, Message = "{Lost}")]
    public static partial void InitializationCountersLost(ILogger logger, string lost);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "status endpoint on {Address}")]
    public static partial void StatusListening(ILogger logger, string address);

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "transport {Transport} ended (no more datagrams)")]
    public static partial void TransportEnded(ILogger logger, string transport);

    [LoggerMessage(EventId = 21, Level = LogLevel.Error, Message = "transport {Transport} failed to receive")]
    public static partial void TransportFailed(ILogger logger, string transport, Exception exception);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "transport {Transport} failed to send")]
    public static partial void SendFailed(ILogger logger, string transport, Exception exception);

    [LoggerMessage(EventId = 23, Level = LogLevel.Error, Message = "unhandled error in the agent loop")]
    public static partial void LoopError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 30, Level = LogLevel.Debug, Message = "data: {Direction} {Node} generation {Generation}, {Length} octets")]
    public static partial void Data(ILogger logger, string direction, string node, Generation generation, int length);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "could not seal data for {Node}: {Outcome}")]
    public static partial void SealFailed(ILogger logger, string node, string outcome);
}
