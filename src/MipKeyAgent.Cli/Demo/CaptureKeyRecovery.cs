using MipKeyAgent.Cli.Capture;
using MipKeyAgent.Protocol;
using MipKeyAgent.Transport;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Cli.Demo;

/// <summary>
/// Recovers every ESP SA of a capture with the nodes' (test) initialization keys, through
/// <see cref="CaptureObserver"/> (IK's SAs, then each KEY-DIST unwrapped under the node's KEK).
/// The demo uses it so tshark can decrypt its file; <c>mipkey replay</c> uses the observer directly.
/// </summary>
internal static class CaptureKeyRecovery
{
    public static IReadOnlyList<SecurityAssociationKeys> Recover(Stream pcap, IReadOnlyList<MobileNodeProvisioning> nodes, uint vendorId)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        using var observer = new CaptureObserver(nodes, vendorId);
        Observe(pcap, observer);
        return [.. observer.SecurityAssociations];
    }

    /// <summary>
    /// Copies of every generation secret the capture's KEY-DISTs carry (unwrapped with the nodes' IK),
    /// in the order they appeared: for tests that search logs for key bytes (the secrets are never
    /// printed; the caller zeroes them).
    /// </summary>
    public static IReadOnlyList<byte[]> RecoverSecrets(Stream pcap, IReadOnlyList<MobileNodeProvisioning> nodes, uint vendorId)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        using var observer = new CaptureObserver(nodes, vendorId);
        Observe(pcap, observer);
        return [.. observer.Generations.Select(g => g.Secret.ToArray())];
    }

    private static void Observe(Stream pcap, CaptureObserver observer)
    {
        if (CaptureFileReader.TryOpen(pcap, leaveOpen: true, out var reader).IsOk && reader is not null)
        {
            using (reader)
            {
                while (reader.TryReadNext(out var record, out bool end).IsOk && !end)
                {
                    if (PcapReplayTransport.TryGetIpv6Datagram(record, out var datagram))
                    {
                        observer.Observe(record.Timestamp, datagram.Span);
                    }
                }
            }
        }
    }
}
