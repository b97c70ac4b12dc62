using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Protocol;

/// <summary>
/// What is provisioned per mobile node on both sides (PROTOCOL.md section 3): its home address,
/// the 32-octet initialization key and IK's two fixed control SPIs, and the ESP suite.
/// </summary>
public sealed record MobileNodeProvisioning(Ipv6Address HomeAddress, byte[] InitializationKey, Spi SpiMnToHa, Spi SpiHaToMn,
    EspSuite Suite = EspSuite.AesGcm256);
