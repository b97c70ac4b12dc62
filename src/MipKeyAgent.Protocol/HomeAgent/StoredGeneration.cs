using System.Security.Cryptography;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Esp;

namespace MipKeyAgent.Protocol.HomeAgent;

/// <summary>
/// One stored generation slot of an in-memory store: overwritten in place from a
/// <see cref="GenerationState"/> (the secret copied into the slot's own array, no allocation),
/// read back as a fresh <see cref="GenerationRecord"/>, zeroed when cleared.
/// </summary>
internal sealed class StoredGeneration
{
    private readonly byte[] _secret = new byte[KeyLengths.Secret];
    private bool _present;
    private Generation _generation;
    private Spi _spiMnToHa;
    private Spi _spiHaToMn;
    private EspSuite _suite;
    private bool _confirmed;
    private DateTimeOffset _createdAt;
    private uint _reserved;
    private uint _controlEdge;
    private uint _dataEdge;
    private KeyReference? _reference;

    public void Set(in GenerationState g)
    {
        if (!g.IsPresent)
        {
            Clear();
            return;
        }
        g.Secret.CopyTo(_secret);
        _present = true;
        _generation = g.Generation;
        _spiMnToHa = g.SpiMnToHa;
        _spiHaToMn = g.SpiHaToMn;
        _suite = g.Suite;
        _confirmed = g.Confirmed;
        _createdAt = g.CreatedAt;
        _reserved = g.TransmitSequenceReserved;
        _controlEdge = g.ControlReceiveRightEdge;
        _dataEdge = g.DataReceiveRightEdge;
        _reference = g.Reference;
    }

    public GenerationRecord? ToRecord() => _present
        ? new GenerationRecord(_generation, (byte[])_secret.Clone(), _spiMnToHa, _spiHaToMn, _suite, _confirmed, _createdAt, _reserved)
        {
            ControlReceiveRightEdge = _controlEdge,
            DataReceiveRightEdge = _dataEdge,
            Reference = _reference,
        }
        : null;

    public void Clear()
    {
        CryptographicOperations.ZeroMemory(_secret);
        _present = false;
        _reference = null;
    }
}
