using System.Security.Cryptography;
using MipKeyAgent.Esp;

namespace MipKeyAgent.Conformance;

/// <summary>
/// A generation the tester holds for one node (IK is generation 0): the secret, the two control
/// SPIs and the four SAs derived as PROTOCOL.md sections 3 and 7 say, from the node's side.
/// </summary>
internal sealed class HeldGeneration : IDisposable
{
    private HeldGeneration(uint generation, byte[] secret, uint spiMnToHa, uint spiHaToMn, EspSuite suite, uint firstSequence, uint firstHaToMnSequence)
    {
        Generation = generation;
        Secret = secret;
        SpiMnToHa = spiMnToHa;
        SpiHaToMn = spiHaToMn;
        Suite = suite;
        var material = new byte[EspSuites.KeyMaterialLength(suite)];
        KeyDerivation.DeriveControlKeyMaterial(secret, KeyDirection.MnToHa, spiMnToHa, suite, material);
        ControlOut = new SecurityAssociation(spiMnToHa, suite, material, lastSequenceSent: firstSequence);
        ControlOutMaterial = (byte[])material.Clone();
        KeyDerivation.DeriveControlKeyMaterial(secret, KeyDirection.HaToMn, spiHaToMn, suite, material);
        ControlIn = new SecurityAssociation(spiHaToMn, suite, material, replayWindowSize: 1024, lastSequenceSent: firstHaToMnSequence);
        ControlInMaterial = (byte[])material.Clone();
        KeyDerivation.DeriveDataKeyMaterial(secret, KeyDirection.MnToHa, spiMnToHa + KeyDerivation.DataSpiOffset, suite, material);
        DataOut = new SecurityAssociation(spiMnToHa + KeyDerivation.DataSpiOffset, suite, material, lastSequenceSent: firstSequence);
        DataOutMaterial = (byte[])material.Clone();
        KeyDerivation.DeriveDataKeyMaterial(secret, KeyDirection.HaToMn, spiHaToMn + KeyDerivation.DataSpiOffset, suite, material);
        DataIn = new SecurityAssociation(spiHaToMn + KeyDerivation.DataSpiOffset, suite, material, replayWindowSize: 1024, lastSequenceSent: firstHaToMnSequence);
        DataInMaterial = (byte[])material.Clone();
        CryptographicOperations.ZeroMemory(material);
    }

    public uint Generation { get; }

    public bool IsInitialization => Generation == 0;

    public byte[] Secret { get; }

    public uint SpiMnToHa { get; }

    public uint SpiHaToMn { get; }

    public EspSuite Suite { get; }

    public SecurityAssociation ControlOut { get; }

    public SecurityAssociation ControlIn { get; }

    public SecurityAssociation DataOut { get; }

    public SecurityAssociation DataIn { get; }

    private byte[] ControlOutMaterial { get; }

    private byte[] ControlInMaterial { get; }

    private byte[] DataOutMaterial { get; }

    private byte[] DataInMaterial { get; }

    /// <summary>(SPI, ESP counter) pairs received under this generation's inbound SAs: none may come twice (PROTOCOL.md 8.1).</summary>
    public HashSet<(uint Spi, uint Sequence)> Received { get; } = [];

    public string Name => IsInitialization ? "IK" : $"g{Generation}";

    /// <summary>
    /// <paramref name="firstSequence"/>: the outbound counter starts after it (a sender resuming
    /// from a reservation may start above 1, PROTOCOL.md 8.1).
    /// <paramref name="firstHaToMnSequence"/>: the same for the HA->MN SAs, which the tester seals with when it plays the home agent.
    /// </summary>
    public static HeldGeneration Create(uint generation, ReadOnlySpan<byte> secret, uint spiMnToHa, uint spiHaToMn, EspSuite suite, uint firstSequence = 0,
        uint firstHaToMnSequence = 0) =>
        new(generation, secret.ToArray(), spiMnToHa, spiHaToMn, suite, firstSequence, firstHaToMnSequence);

    public bool SameAs(ReadOnlySpan<byte> secret, uint spiMnToHa, uint spiHaToMn) =>
        SpiMnToHa == spiMnToHa && SpiHaToMn == spiHaToMn && CryptographicOperations.FixedTimeEquals(Secret, secret);

    public IEnumerable<SecurityAssociationKeys> SecurityAssociations(string node)
    {
        yield return new(SpiMnToHa, Suite, ControlOutMaterial, $"{node} {Name} control mn->ha");
        yield return new(SpiHaToMn, Suite, ControlInMaterial, $"{node} {Name} control ha->mn");
        yield return new(SpiMnToHa + KeyDerivation.DataSpiOffset, Suite, DataOutMaterial, $"{node} {Name} data mn->ha");
        yield return new(SpiHaToMn + KeyDerivation.DataSpiOffset, Suite, DataInMaterial, $"{node} {Name} data ha->mn");
    }

    public void Dispose()
    {
        ControlOut.Dispose();
        ControlIn.Dispose();
        DataOut.Dispose();
        DataIn.Dispose();
    }
}
