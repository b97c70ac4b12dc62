using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Internal;

/// <summary>
/// What the kernel does for a packet socket before we see a frame: its receive buffer, a classic
/// BPF filter that drops in the kernel what we would pass over (packet(7), SO_ATTACH_FILTER), and
/// the count of frames it dropped because the buffer was full (SO_MEMINFO, SK_MEMINFO_DROPS).
/// </summary>
internal static class PacketSocketKernel
{
    private const int SolSocket = 1;
    private const int SoRcvBuf = 8;
    private const int SoRcvBufForce = 33;
    private const int SoAttachFilter = 26;
    private const int SoMemInfo = 55;

    /// <summary>SK_MEMINFO_VARS u32 values; SK_MEMINFO_DROPS is the last (linux/sock_diag.h).</summary>
    private const int MemInfoCount = 9;
    private const int MemInfoDropsIndex = 8;

    // Classic BPF (linux/filter.h): struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }.
    private const ushort LoadWordAbsolute = 0x20;
    private const ushort LoadByteAbsolute = 0x30;
    private const ushort JumpIfEqual = 0x15;
    private const ushort Return = 0x06;
    private const int InstructionLength = 8;

    /// <summary>What an accepting filter returns: the octets kept (all of any IPv6 frame).</summary>
    private const uint KeepAll = 0x40000;

    /// <summary>Offsets in the IPv6 header (RFC 8200 section 3).</summary>
    private const int NextHeaderOffset = 6;
    private const int DestinationOffset = 24;

    /// <summary>A jump offset is one octet: this many addresses (8 instructions each) still reach the accept.</summary>
    public const int MaxFilterAddresses = 30;

    /// <summary>SO_RCVBUFFORCE (CAP_NET_ADMIN: past net.core.rmem_max), else SO_RCVBUF (capped by rmem_max).</summary>
    public static void SetReceiveBuffer(Socket socket, int bytes)
    {
        try
        {
            socket.SetRawSocketOption(SolSocket, SoRcvBufForce, BitConverter.GetBytes(bytes));
        }
        catch (SocketException)
        {
            socket.SetRawSocketOption(SolSocket, SoRcvBuf, BitConverter.GetBytes(bytes));
        }
    }

    /// <summary>Frames the kernel dropped for this socket since it was opened (its receive buffer was full, mostly).</summary>
    public static long Drops(Socket socket)
    {
        Span<byte> info = stackalloc byte[MemInfoCount * sizeof(uint)];
        try
        {
            int length = socket.GetRawSocketOption(SolSocket, SoMemInfo, info);
            return length >= (MemInfoDropsIndex + 1) * sizeof(uint)
                ? MemoryMarshal.Read<uint>(info[(MemInfoDropsIndex * sizeof(uint))..])
                : 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return 0;
        }
    }

    /// <summary>
    /// A filter that keeps IPv6 datagrams whose destination is one of <paramref name="addresses"/>, the
    /// IPv6 header at <paramref name="ipOffset"/> (0 on a SOCK_DGRAM packet socket, 14 on SOCK_RAW).
    /// Null when there are none or too many to express (the caller's own check still applies).
    /// </summary>
    public static byte[]? KeepDestinations(int ipOffset, IReadOnlyCollection<Ipv6Address> addresses)
    {
        if (addresses.Count is 0 or > MaxFilterAddresses)
        {
            return null;
        }
        int count = addresses.Count * 8 + 2;
        var program = new byte[count * InstructionLength];
        int at = 0;
        int drop = count - 2;
        int accept = count - 1;
        Span<byte> octets = stackalloc byte[Ipv6Address.Length];
        foreach (var address in addresses)
        {
            address.WriteTo(octets);
            int next = at + 8;
            for (int word = 0; word < 4; word++)
            {
                Write(program, at, LoadWordAbsolute, 0, 0, (uint)(ipOffset + DestinationOffset + word * 4));
                at++;
                // Equal: on to the next word (or accept after the last); else the next address (or drop after the last).
                int whenEqual = word == 3 ? accept : at + 1;
                int whenNot = next < drop ? next : drop;
                Write(program, at, JumpIfEqual, Jump(at, whenEqual), Jump(at, whenNot), BinaryPrimitives.ReadUInt32BigEndian(octets[(word * 4)..]));
                at++;
            }
        }
        Write(program, drop, Return, 0, 0, 0);
        Write(program, accept, Return, 0, 0, KeepAll);
        return program;
    }

    /// <summary>
    /// A filter that drops datagrams to <paramref name="address"/> unless they are ICMPv6 right after the
    /// IPv6 header (Neighbor Discovery): the home link's proxy never takes anything else sent to the home
    /// agent's own address, which the kernel and the agent's transport receive.
    /// </summary>
    public static byte[] DropToAddressUnlessIcmpv6(int ipOffset, Ipv6Address address)
    {
        Span<byte> octets = stackalloc byte[Ipv6Address.Length];
        address.WriteTo(octets);
        const int count = 12;
        const int checkIcmp = 8;
        const int drop = 10;
        const int accept = 11;
        var program = new byte[count * InstructionLength];
        int at = 0;
        for (int word = 0; word < 4; word++)
        {
            Write(program, at, LoadWordAbsolute, 0, 0, (uint)(ipOffset + DestinationOffset + word * 4));
            at++;
            Write(program, at, JumpIfEqual, Jump(at, word == 3 ? checkIcmp : at + 1), Jump(at, accept), BinaryPrimitives.ReadUInt32BigEndian(octets[(word * 4)..]));
            at++;
        }
        Write(program, checkIcmp, LoadByteAbsolute, 0, 0, (uint)(ipOffset + NextHeaderOffset));
        Write(program, checkIcmp + 1, JumpIfEqual, Jump(checkIcmp + 1, accept), Jump(checkIcmp + 1, drop), IpProtocol.Icmpv6);
        Write(program, drop, Return, 0, 0, 0);
        Write(program, accept, Return, 0, 0, KeepAll);
        return program;
    }

    /// <summary>Attaches <paramref name="program"/> (classic BPF instructions) to <paramref name="socket"/>; the kernel copies it.</summary>
    public static void Attach(Socket socket, byte[] program)
    {
        // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: 16 octets on LP64.
        var pinned = GC.AllocateArray<byte>(program.Length, pinned: true);
        program.CopyTo(pinned, 0);
        var fprog = new byte[16];
        BitConverter.TryWriteBytes(fprog.AsSpan(0, 2), (ushort)(program.Length / InstructionLength));
        MemoryMarshal.Write(fprog.AsSpan(8), (long)Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0));
        socket.SetRawSocketOption(SolSocket, SoAttachFilter, fprog);
        GC.KeepAlive(pinned);
    }

    /// <summary>Whether filters can be attached here (the layout of struct sock_fprog above).</summary>
    public static bool FiltersSupported => OperatingSystem.IsLinux() && Environment.Is64BitProcess && BitConverter.IsLittleEndian;

    /// <summary>Runs <paramref name="program"/> on <paramref name="packet"/> as the kernel would (for tests): the octets kept, 0 to drop.</summary>
    public static uint Run(byte[] program, ReadOnlySpan<byte> packet)
    {
        uint accumulator = 0;
        int pc = 0;
        while (pc * InstructionLength < program.Length)
        {
            var instruction = program.AsSpan(pc * InstructionLength, InstructionLength);
            ushort code = BitConverter.ToUInt16(instruction);
            uint k = BitConverter.ToUInt32(instruction[4..]);
            switch (code)
            {
                case LoadWordAbsolute:
                    if (k + 4 > packet.Length)
                    {
                        return 0;
                    }
                    accumulator = BinaryPrimitives.ReadUInt32BigEndian(packet[(int)k..]);
                    pc++;
                    break;
                case LoadByteAbsolute:
                    if (k + 1 > packet.Length)
                    {
                        return 0;
                    }
                    accumulator = packet[(int)k];
                    pc++;
                    break;
                case JumpIfEqual:
                    pc += 1 + (accumulator == k ? instruction[2] : instruction[3]);
                    break;
                case Return:
                    return k;
                default:
                    throw new InvalidOperationException($"instruction 0x{code:x} is not one these filters use");
            }
        }
        throw new InvalidOperationException("the program ran off its end");
    }

    private static byte Jump(int from, int to) => checked((byte)(to - from - 1));

    private static void Write(byte[] program, int index, ushort code, byte jumpTrue, byte jumpFalse, uint k)
    {
        var at = program.AsSpan(index * InstructionLength, InstructionLength);
        BitConverter.TryWriteBytes(at, code);
        at[2] = jumpTrue;
        at[3] = jumpFalse;
        BitConverter.TryWriteBytes(at[4..], k);
    }
}
