namespace MipKeyAgent.Protocol;

/// <summary>Binding Update sequence numbers compare modulo 2^16 (RFC 6275 section 9.5.1).</summary>
internal static class SequenceNumber
{
    /// <summary>
    /// True when <paramref name="candidate"/> is newer than <paramref name="last"/>: it lies in the
    /// 32767 values after it. The 32768 values at or before it are "not newer".
    /// </summary>
    public static bool IsNewer(ushort candidate, ushort last) => (short)(candidate - last) > 0;
}
