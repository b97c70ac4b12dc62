using System.Diagnostics.CodeAnalysis;

namespace MipKeyAgent.Esp.Internal;

/// <summary>
/// Throw helpers for the ESP and key code. Only programming errors throw (a wrong key
/// length, a destination too small for a writer); malformed input is a <see cref="MipKeyAgent.Wire.WireError"/>.
/// Kept out of line so the hot paths stay small and inlinable.
/// </summary>
internal static class EspThrow
{
    [DoesNotReturn]
    public static void Argument(string message, string paramName) => throw new ArgumentException(message, paramName);

    [DoesNotReturn]
    public static void ArgumentOutOfRange(string paramName, string message) =>
        throw new ArgumentOutOfRangeException(paramName, message);

    [DoesNotReturn]
    public static void ObjectDisposed(object instance) => throw new ObjectDisposedException(instance.GetType().FullName);
}
