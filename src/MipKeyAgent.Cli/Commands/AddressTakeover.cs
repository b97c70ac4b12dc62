using System.Net.NetworkInformation;
using System.Net.Sockets;
using MipKeyAgent.Cli.Config;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;
using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Cli.Commands;

/// <summary>
/// <c>mipkey ha --takeover-link IFACE</c> for the HAs of a pair on different machines (docs/cluster.md): the home agent's
/// address is configured on no host; the active HA answers Neighbor Discovery for it from its own MAC on the home link, and
/// announces it when it takes the lease with unsolicited Neighbor Advertisements, Override set (RFC 4861 section 7.2.6), so
/// the neighbours' caches move from the former active's MAC to its own at once. It answers only while it runs as the active:
/// a killed or fenced former active answers nothing more.
/// </summary>
internal static partial class AddressTakeover
{
    /// <summary>
    /// The start's checks: a pair's option, on an existing interface that does not hold the address itself (its kernel
    /// would answer for it too, on the standby as well).
    /// </summary>
    public static void Check(string link, bool pair, Ipv6Address address)
    {
        if (!pair)
        {
            throw new ConfigException("--takeover-link", 0, null, "needs a postgresql:// --store (the HAs of a pair take the address over from each other)");
        }
        StartChecks.InterfaceExists("--takeover-link", link);
        var configured = NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.Name == link)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Any(a => a.Address.AddressFamily == AddressFamily.InterNetworkV6 && Ipv6Address.FromIPAddress(a.Address) == address);
        if (configured)
        {
            throw new ConfigException("--takeover-link", 0, null,
                $"{address} is configured on {link}: with --takeover-link only the active HA answers for it, so no host of the pair may hold it " +
                $"(ip -6 addr del {address}/64 dev {link})");
        }
    }

    /// <summary>
    /// Starts answering for <paramref name="address"/> on <paramref name="link"/> as its owner (CAP_NET_RAW); disposing stops, and
    /// so does <paramref name="lost"/> (the lease lost: another HA answers for the address now).
    /// </summary>
    public static HomeLinkProxy Start(string link, Ipv6Address address, ILogger logger, CancellationToken lost)
    {
        var proxy = HomeLinkProxy.Open(new HomeLinkProxyOptions { InterfaceName = link, HomeAgentAddress = address });
        try
        {
            proxy.AddOwnAddress(address);
        }
        catch
        {
            proxy.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        lost.Register(() => _ = proxy.DisposeAsync().AsTask());
        Log.TookOver(logger, address.ToString(), link, Convert.ToHexStringLower(proxy.MacAddress.Span));
        return proxy;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 65, Level = LogLevel.Information,
            Message = "took over {Address} on {Link}: announced with MAC {Mac} (unsolicited Neighbor Advertisements, override) and answered while active")]
        public static partial void TookOver(ILogger logger, string address, string link, string mac);
    }
}
