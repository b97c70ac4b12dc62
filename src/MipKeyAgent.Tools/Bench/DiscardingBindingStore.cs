using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Tools.Bench;

/// <summary>
/// A binding store that keeps nothing: the scale benchmark measures what the engine itself holds
/// per binding (a durable store keeps its copy on disk, not in the engine's heap).
/// </summary>
internal sealed class DiscardingBindingStore : IBindingStore
{
    public BindingRecord? Load(Ipv6Address homeAddress) => null;

    public void Save(BindingRecord record)
    {
    }

    public void Save(in BindingState state)
    {
    }

    public void Remove(Ipv6Address homeAddress)
    {
    }

    public uint LoadInitializationSequenceReserved(Ipv6Address homeAddress) => 0;

    public void SaveInitializationSequenceReserved(Ipv6Address homeAddress, uint reserved)
    {
    }

    public IReadOnlyCollection<uint> LoadRetiredSpis() => [];

    public void SaveRetiredSpis(IReadOnlyCollection<uint> spis)
    {
    }
}
