using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Hosting;

/// <summary>
/// The pump of a device beside the engine's transport (the home link's proxy, the node's tun): it
/// hands the packets the device has queued to <c>post</c> in batches, which queues the work on the
/// <see cref="AgentLoop"/>; the loop alone touches the engine and the data plane.
/// </summary>
internal static class PacketFeed
{
    /// <summary>Packets handed to the loop in one posted work item at most.</summary>
    public const int MaxBatch = 64;

    /// <summary>
    /// Runs until cancelled or the device closes (a receive of 0); any other failure is logged and ends the
    /// pump. Each turn hands what the device has queued (up to <see cref="MaxBatch"/> packets, their arrays
    /// owned by <paramref name="post"/>) to the loop as one piece of work.
    /// </summary>
    public static async Task RunAsync(string name, Func<List<byte[]>, int, CancellationToken, ValueTask<int>> receive, Action<List<byte[]>> post,
        ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var packets = new List<byte[]>(MaxBatch);
                if (await receive(packets, MaxBatch, cancellationToken).ConfigureAwait(false) == 0)
                {
                    return;
                }

                post(packets);
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
