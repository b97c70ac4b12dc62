using SharpPcap;

namespace MipKeyAgent.Transport;

/// <summary>libpcap is not on this machine (SharpPcap binds to it at run time).</summary>
public sealed class LibpcapMissingException(Exception inner)
    : Exception($"libpcap is not installed, and capture files and live interfaces need it: install the Debian package {Libpcap.DebianPackage} (apt-get install {Libpcap.DebianPackage}). ({inner.Message})", inner);

/// <summary>The native libpcap SharpPcap calls into: one check, so its absence is one clear error.</summary>
public static class Libpcap
{
    public const string DebianPackage = "libpcap0.8";

    private static readonly Lazy<string> LoadedVersion = new(() => Probe(() => Pcap.LibpcapVersion.ToString()));

    /// <summary>libpcap's version string; throws <see cref="LibpcapMissingException"/> when it cannot be loaded.</summary>
    public static string Version => LoadedVersion.Value;

    /// <summary>Throws <see cref="LibpcapMissingException"/> when libpcap cannot be loaded.</summary>
    public static void EnsureLoaded() => _ = Version;

    /// <summary>Runs <paramref name="call"/> (a first call into libpcap), turning a failed load into <see cref="LibpcapMissingException"/>.</summary>
    public static T Probe<T>(Func<T> call)
    {
        ArgumentNullException.ThrowIfNull(call);
        try
        {
            return call();
        }
        catch (DllNotFoundException e)
        {
            throw new LibpcapMissingException(e);
        }
        catch (TypeInitializationException e) when (e.InnerException is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new LibpcapMissingException(e.InnerException);
        }
    }
}
