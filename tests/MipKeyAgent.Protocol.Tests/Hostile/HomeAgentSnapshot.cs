using System.Text;

namespace MipKeyAgent.Protocol.Tests.Hostile;

/// <summary>
/// Everything a hostile input must not change on the HA: every node's view, every key ring
/// (generations, SPIs, confirmation, each SA's replay right edge and outbound counter), the SPI
/// table, and the counters by name (so a test can allow exactly the ones it expects to move).
/// </summary>
internal sealed record HomeAgentSnapshot(string Nodes, IReadOnlyDictionary<string, long> Counters, int Sent)
{
    public static HomeAgentSnapshot Take(Testbed bed)
    {
        var text = new StringBuilder();
        foreach (var node in bed.Nodes)
        {
            text.Append(bed.HomeAgent.GetNode(node.HomeAddress)).Append('\n');
            foreach (var keys in bed.HomeAgent.GetKeyRing(node.HomeAddress)!.All())
            {
                text.Append(keys).Append(keys.Confirmed ? " c" : " u");
                foreach (var sa in new[] { keys.ControlMnToHa, keys.ControlHaToMn, keys.DataMnToHa, keys.DataHaToMn })
                {
                    text.Append(' ').Append(sa.ReplayWindow.RightEdge).Append('/').Append(sa.ReplayWindow.CountReceived()).Append('/').Append(sa.LastSequenceSent);
                }
                text.Append('\n');
            }
        }
        text.Append("spis ").Append(bed.HomeAgent.Spis.Count).Append(" retired ").Append(bed.HomeAgent.Spis.RetiredCount);
        var c = bed.HomeAgent.Counters;
        var counters = new Dictionary<string, long>
        {
            ["Received"] = c.Received, ["Sent"] = c.Sent, ["ControlAccepted"] = c.ControlAccepted, ["DataDelivered"] = c.DataDelivered,
            ["DataSealed"] = c.DataSealed, ["Inits"] = c.Inits, ["Updates"] = c.Updates, ["Resends"] = c.Resends,
            ["BindingRefreshRequests"] = c.BindingRefreshRequests, ["SequenceOutOfWindow"] = c.SequenceOutOfWindow,
            ["KeySourceUnavailable"] = c.KeySourceUnavailable, ["Confirmations"] = c.Confirmations, ["Deregistrations"] = c.Deregistrations,
            ["BindingsExpired"] = c.BindingsExpired, ["DroppedTotal"] = c.DroppedTotal,
        };
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            counters["Dropped." + reason] = c.Dropped(reason);
        }
        return new HomeAgentSnapshot(text.ToString(), counters, bed.Driver.Sent.Count);
    }

    /// <summary>Asserts nothing changed except <paramref name="moved"/> counters, each by the given amount.</summary>
    public void AssertUnchangedExcept(HomeAgentSnapshot after, params (string Counter, long By)[] moved)
    {
        Assert.Equal(Nodes, after.Nodes);
        Assert.Equal(Sent, after.Sent);
        AssertCounters(after, moved);
    }

    public void AssertCounters(HomeAgentSnapshot after, params (string Counter, long By)[] moved)
    {
        foreach (var (name, value) in Counters)
        {
            long expected = value + moved.Where(m => m.Counter == name).Sum(m => m.By);
            Assert.True(expected == after.Counters[name], $"counter {name}: expected {expected}, was {after.Counters[name]}");
        }
    }

    /// <summary>The counters one counted silent drop moves: Received, DroppedTotal and its reason.</summary>
    public static (string, long)[] Drop(DropReason reason, int count = 1) =>
        [("Received", count), ("DroppedTotal", count), ("Dropped." + reason, count)];
}
