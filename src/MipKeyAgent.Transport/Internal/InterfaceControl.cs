using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Internal;

/// <summary>
/// netdevice(7) ioctls on an AF_INET6 datagram socket: MTU, up, IPv6 address, hardware address.
/// The socket, and so the interface names, belong to the network namespace of the calling
/// thread. Needs CAP_NET_ADMIN for the setters.
/// </summary>
internal static class InterfaceControl
{
    /// <summary>struct in6_ifreq (linux/ipv6.h): in6_addr, u32 prefix length, int ifindex.</summary>
    private const int In6IfReqLength = 24;
    private const int In6PrefixLengthOffset = 16;
    private const int In6IndexOffset = 20;

    /// <summary>sa_family precedes the address bytes in ifr_hwaddr.</summary>
    private const int HardwareAddressOffset = LibC.IfReqUnionOffset + 2;

    public static void SetMtu(string name, int mtu)
    {
        var request = Request(name);
        BitConverter.TryWriteBytes(request.AsSpan(LibC.IfReqUnionOffset), mtu);
        Ioctl(LibC.SIOCSIFMTU, request, $"set MTU {mtu} on {name}");
    }

    /// <summary>txqueuelen; for a tun also the length of its queue of packets waiting for our reads.</summary>
    public static void SetTransmitQueueLength(string name, int length)
    {
        var request = Request(name);
        BitConverter.TryWriteBytes(request.AsSpan(LibC.IfReqUnionOffset), length);
        Ioctl(LibC.SIOCSIFTXQLEN, request, $"set txqueuelen {length} on {name}");
    }

    public static void SetUp(string name)
    {
        var request = Request(name);
        Ioctl(LibC.SIOCGIFFLAGS, request, $"read flags of {name}");
        short flags = BitConverter.ToInt16(request, LibC.IfReqUnionOffset);
        BitConverter.TryWriteBytes(request.AsSpan(LibC.IfReqUnionOffset), (short)(flags | LibC.IFF_UP));
        Ioctl(LibC.SIOCSIFFLAGS, request, $"bring {name} up");
    }

    public static void AddAddress(string name, Ipv6Address address, int prefixLength)
    {
        int index = (int)LibC.if_nametoindex(name);
        if (index == 0)
        {
            throw new ArgumentException($"No interface named {name} in this network namespace.", nameof(name));
        }

        var request = new byte[In6IfReqLength];
        address.WriteTo(request);
        BitConverter.TryWriteBytes(request.AsSpan(In6PrefixLengthOffset), (uint)prefixLength);
        BitConverter.TryWriteBytes(request.AsSpan(In6IndexOffset), index);
        Ioctl(LibC.SIOCSIFADDR, request, $"add {address}/{prefixLength} to {name}");
    }

    public static byte[] GetMacAddress(string name)
    {
        var request = Request(name);
        Ioctl(LibC.SIOCGIFHWADDR, request, $"read the hardware address of {name}");
        return request.AsSpan(HardwareAddressOffset, Ethernet.MacLength).ToArray();
    }

    private static byte[] Request(string name)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name);
        if (nameBytes.Length is 0 or >= LibC.IfNameSize)
        {
            throw new ArgumentException("An interface name has 1 to 15 ASCII characters.", nameof(name));
        }

        var request = new byte[LibC.IfReqLength];
        nameBytes.CopyTo(request, 0);
        return request;
    }

    private static void Ioctl(uint request, byte[] argument, string what)
    {
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        if (LibC.ioctl(socket.SafeHandle, request, argument) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new Win32Exception(errno, $"{what}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }
}
