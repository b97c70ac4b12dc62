using MipKeyAgent.Protocol.Keys;

namespace MipKeyAgent.Protocol.MobileNode;

public sealed partial class MobileNodeEngine
{
    // An accepted control packet moved a receive window that is not written yet.
    private bool _controlEdgeUnsaved;

    /// <summary>
    /// Writes the node's state to the store: init epoch, next BU sequence number, IK's sequence
    /// reservation and receive right edges, and the dynamic generations (secrets, SPIs,
    /// reservations, right edges). Called before every BU leaves, after every install or drop of
    /// keys, after every accepted control packet, when a sequence reservation is extended and at
    /// data checkpoints, so a restarted node continues where this one stopped (docs/store.md).
    /// </summary>
    private void Persist()
    {
        var ik = _ring.Initialization;
        ik.DataReceiveCheckpoint = ik.DataReceiveRightEdge(KeyRingSide.MobileNode);
        _state = _state with
        {
            InitializationControlReceiveRightEdge = ik.ControlReceiveRightEdge(KeyRingSide.MobileNode),
            InitializationDataReceiveRightEdge = ik.DataReceiveCheckpoint,
            AwaitingInit = _phase == MobileNodePhase.Initializing,
        };
        _controlEdgeUnsaved = false;
        // Views of the live keys, not records: nothing is allocated per BU (IMobileNodeStateStore.Save(state, in ...)).
        if (_ring.DynamicCount == 0)
        {
            _store.Save(_state, default, default, null);
            return;
        }
        var newest = _ring.Newest;
        var previous = _ring.DynamicCount > 1 ? _ring.Previous! : null;
        Generation? initAnswer = ReferenceEquals(_initAnswer, newest) || ReferenceEquals(_initAnswer, previous) ? _initAnswer!.Generation : null;
        _store.Save(_state, GenerationRecords.ToState(newest, KeyRingSide.MobileNode),
            previous is null ? default : GenerationRecords.ToState(previous, KeyRingSide.MobileNode), initAnswer);
    }

    /// <summary>Rebuilds the dynamic generations a previous run stored (the loaded secrets are zeroed here).</summary>
    private void RestoreKeys(MobileNodeKeys? stored)
    {
        if (stored is null)
        {
            return;
        }
        try
        {
            GenerationKeys? previous = null;
            if (stored.Previous is { } p)
            {
                previous = GenerationRecords.FromRecord(p, KeyRingSide.MobileNode, _options.ReplayWindowSize);
                _ring.InstallAfterInit(previous);
            }
            var newest = GenerationRecords.FromRecord(stored.Newest, KeyRingSide.MobileNode, _options.ReplayWindowSize);
            if (previous is null)
            {
                _ring.InstallAfterInit(newest);
            }
            else
            {
                _ring.InstallNext(newest);
            }
            if (stored.InitAnswer is { } answer)
            {
                _initAnswer = _ring.Find(answer) is { Generation.IsInitialization: false } held ? held : null;
            }
        }
        finally
        {
            stored.ZeroSecrets();
        }
    }

    /// <summary>Writes the data SA's right edge once it moved <see cref="MobileNodeOptions.ReplayCheckpointInterval"/> past the last write.</summary>
    private void CheckpointDataWindow(GenerationKeys keys)
    {
        if (keys.DataHaToMn.ReplayWindow.RightEdge - keys.DataReceiveCheckpoint >= _options.ReplayCheckpointInterval)
        {
            Persist();
        }
    }
}
