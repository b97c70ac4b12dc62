using MipKeyAgent.Protocol;

namespace MipKeyAgent.Hosting;

/// <summary>One <c>[mobile-node NAME]</c> section of a home agent's provisioning file.</summary>
public sealed class ProvisionedNode(string name, MobileNodeProvisioning provisioning, int line)
{
    public string Name { get; } = name;

    public MobileNodeProvisioning Provisioning { get; } = provisioning;

    /// <summary>The line of the section in its file (for errors that name it).</summary>
    public int Line { get; } = line;

    /// <summary>Redacted: names numbers, never key bytes.</summary>
    public override string ToString() =>
        $"{Name} home-address {Provisioning.HomeAddress} spi-mn-to-ha {Provisioning.SpiMnToHa.Value} spi-ha-to-mn {Provisioning.SpiHaToMn.Value} " +
        $"suite {ValueText.SuiteName(Provisioning.Suite)} initialization-key <redacted>";
}
