using System.Runtime.InteropServices;

namespace MipKeyAgent.Transport.Internal;

/// <summary>stdio over memory, for handing libpcap a capture that is not a file.</summary>
internal static partial class LibC
{
    /// <summary>fmemopen(3): a <c>FILE*</c> reading <paramref name="size"/> octets at <paramref name="buffer"/>; zero on failure.</summary>
    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    public static extern IntPtr fmemopen(IntPtr buffer, nuint size, string mode);
}
