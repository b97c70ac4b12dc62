using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Hosting;

/// <summary>
/// The pump of a device beside the engine's transport (the home link's proxy, the node's tun): it
/// only copies each packet the device delivers and hands it to <c>post</c>, which queues the work on
/// the <see cref="AgentLoop"/>; the loop alone touches the engine and the data plane.
/// </summary>
internal static class PacketFeed
{
    /// <summary>Runs until cancelled or the device closes (a read of 0); any other failure is logged and ends the pump.</summary>
    public static async Task RunAsync(string name, Func<Memory<byte>, CancellationToken, ValueTask<int>> receive, Action<byte[]> post,
        ILogger logger, CancellationToken cancellationToken)
    {
        var buffer = new byte[65_535 + 40];
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                int length = await receive(buffer, cancellationToken).ConfigureAwait(false);
                if (length == 0)
                {
                    return;
                }

                post(buffer.AsSpan(0, length).ToArray());
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            AgentLog.TransportFailed(logger, name, e);
        }
    }

    /// <summary>Counts one packet under its generation (the per-generation data counters of the status endpoint).</summary>
    public static void Count(SortedDictionary<uint, long> counters, uint generation) =>
        counters[generation] = counters.GetValueOrDefault(generation) + 1;
}
