namespace MipKeyAgent.Wire;

/// <summary>Mobility option types (RFC 6275 section 6.2, RFC 5096, RFC 5094).</summary>
internal static class MobilityOptionType
{
    public const byte Pad1 = 0;
    public const byte PadN = 1;
    public const byte BindingRefreshAdvice = 2;
    public const byte AlternateCareOfAddress = 3;
    public const byte NonceIndices = 4;
    public const byte BindingAuthorizationData = 5;
    public const byte Experimental = 18;
    public const byte VendorSpecific = 19;
}

/// <summary>
/// Alignment (xn+y: the Type octet at an offset from the Mobility Header start that is y
/// modulo x) and length rules of the options this code knows (RFC 6275 sections 6.2.3-6.2.7,
/// RFC 5094 section 3). Unknown types have no rule and are skipped.
/// </summary>
internal readonly record struct MobilityOptionRule(int AlignmentModulus, int AlignmentRemainder, int MinimumLength, int MaximumLength)
{
    public static bool TryGet(byte type, out MobilityOptionRule rule)
    {
        rule = type switch
        {
            MobilityOptionType.BindingRefreshAdvice => new(2, 0, 2, 2),
            MobilityOptionType.AlternateCareOfAddress => new(8, 6, Ipv6Address.Length, Ipv6Address.Length),
            MobilityOptionType.NonceIndices => new(2, 0, 4, 4),
            // RFC 6275 section 6.2.7: the length is the authenticator's (96 bits today); at least one octet.
            MobilityOptionType.BindingAuthorizationData => new(8, 2, 1, byte.MaxValue),
            // RFC 5094 section 3: Vendor ID (32) and Sub-Type (8) at least.
            MobilityOptionType.VendorSpecific => new(4, 2, VendorSpecificOption.HeaderLength, byte.MaxValue),
            _ => default,
        };
        return rule.AlignmentModulus != 0;
    }

    public bool IsAligned(int offset) => offset % AlignmentModulus == AlignmentRemainder;

    /// <summary>Padding that puts an option's Type octet written at <paramref name="position"/> on its alignment.</summary>
    public int PaddingAt(int position) => ((AlignmentRemainder - position) % AlignmentModulus + AlignmentModulus) % AlignmentModulus;
}
