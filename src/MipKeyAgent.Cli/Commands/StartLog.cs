using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Cli.Commands;

/// <summary>Log lines of <c>mipkey ha</c>'s and <c>mipkey mn</c>'s start (source-generated); the running agent's are the host's.</summary>
internal static partial class StartLog
{
    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "--volatile: bindings are kept in memory only (a restart makes every node " +
        "re-initialize); the initialization keys' ESP counter reservations are kept in {CounterFile} (PROTOCOL.md section 8.1)")]
    public static partial void VolatileStore(ILogger logger, string counterFile);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "{Notice}")]
    public static partial void StoreAnchorNotice(ILogger logger, string notice);

    [LoggerMessage(EventId = 32, Level = LogLevel.Error, Message = "{Lost}")]
    public static partial void InitializationCountersLost(ILogger logger, string lost);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "status endpoint on {Address}")]
    public static partial void StatusListening(ILogger logger, string address);
}
