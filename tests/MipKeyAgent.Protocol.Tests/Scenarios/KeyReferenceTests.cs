namespace MipKeyAgent.Protocol.Tests.Scenarios;

/// <summary>A KME pair in miniature: secrets named by UUID, fetchable by reference; can run dry.</summary>
internal sealed class FakeKmePair(int seed) : IReferencedKeySource
{
    private readonly Random _random = new(seed);

    public Dictionary<Guid, byte[]> Issued { get; } = [];

    /// <summary>Secrets in the order they were handed out.</summary>
    public List<byte[]> InOrder { get; } = [];

    public bool Empty { get; set; }

    public KeySourceResult TryNextSecret(Span<byte> destination32) => TryNextSecret(default, destination32, out _);

    public KeySourceResult TryNextSecret(Ipv6Address homeAddress, Span<byte> destination32, out KeyReference reference)
    {
        reference = default;
        if (Empty)
        {
            return KeySourceResult.Unavailable(TimeSpan.FromSeconds(2));
        }
        var secret = new byte[32];
        _random.NextBytes(secret);
        var idBytes = new byte[16];
        _random.NextBytes(idBytes);
        var id = new Guid(idBytes);
        Issued[id] = secret;
        InOrder.Add(secret);
        secret.CopyTo(destination32);
        reference = new KeyReference(id, "SAE_HA");
        return KeySourceResult.Ok;
    }
}

/// <summary>Records fetch requests; the test answers them (as the host would, on the engine loop).</summary>
internal sealed class RecordingResolver : IKeyReferenceResolver
{
    public List<KeyReference> Requests { get; } = [];

    public void BeginFetch(Ipv6Address homeAddress, KeyReference reference) => Requests.Add(reference);
}

/// <summary>Key-reference mode (PROTOCOL.md section 1 flag 0x01, section 6 "fetch by reference").</summary>
public sealed class KeyReferenceTests
{
    private static (Testbed Bed, FakeKmePair Kme, RecordingResolver Resolver) NewBed()
    {
        var kme = new FakeKmePair(5);
        var resolver = new RecordingResolver();
        var bed = new Testbed(new TestbedSettings { KeySource = kme, KeyDelivery = KeyDelivery.Reference, KeyResolver = _ => resolver });
        return (bed, kme, resolver);
    }

    private static void Answer(Testbed bed, FakeKmePair kme, RecordingResolver resolver)
    {
        var reference = resolver.Requests[^1];
        Assert.True(bed.Node.Engine.KeyArrived(reference.KeyId, kme.Issued[reference.KeyId]));
        bed.Driver.Pump();
    }

    [Fact]
    public void Reference_InitAndUpdates_NodeFetchesInstallsAndNoKeyBytesCrossTheLink()
    {
        var (bed, kme, resolver) = NewBed();
        using var _ = bed;
        bed.Start();
        var init = Assert.Single(resolver.Requests);
        Assert.Equal("SAE_HA", init.SourceIdentifier);
        Assert.True(bed.Node.View.AwaitingInit);
        Assert.Equal(init, bed.Node.Engine.PendingKeyReference);
        Answer(bed, kme, resolver);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.Null(bed.Node.Engine.PendingKeyReference);
        bed.AssertDataFlows();

        for (int i = 2; i <= 4; i++)
        {
            bed.Update();
            Assert.Equal(new Generation((uint)i - 1), bed.Node.View.Newest);
            bed.AssertDataFlows();
            Answer(bed, kme, resolver);
            Assert.Equal(new Generation((uint)i), bed.Node.View.Newest);
            Assert.Equal(new Generation((uint)i), bed.HomeAgentView().Newest);
            bed.AssertDataFlows();
        }

        var ik = bed.Node.Provisioning;
        var allSecrets = kme.InOrder;
        // BAs travel under IK, g1, g2, g3 (the HA transmits N-1): open them with every generation's keys.
        var known = new List<KnownGeneration> { new(ik.InitializationKey.ToArray(), ik.SpiMnToHa, ik.SpiHaToMn) };
        known.AddRange(bed.Events.Where(e => e.Kind is ProtocolEventKind.InitAnswered or ProtocolEventKind.UpdateIssued)
            .Select(e => new KnownGeneration(allSecrets[(int)e.Generation.Value - 1], e.SpiMnToHa, e.SpiHaToMn)));
        var plaintexts = ControlPlaintext.Open(bed.Driver.Sent, known);
        Assert.True(plaintexts.Count >= 8, $"only {plaintexts.Count} control messages opened");
        var distributions = ControlPlaintext.KeyDistributions(plaintexts);
        Assert.Equal([1u, 2u, 3u, 4u], distributions.Select(d => d.Generation));
        Assert.All(distributions, d => Assert.True(d.IsReference));
        var kek = new byte[32];
        KeyDerivation.DeriveKek(ik.InitializationKey, ik.HomeAddress, kek);
        foreach (var secret in allSecrets)
        {
            var wrapped = new byte[40];
            KeyWrap.Wrap(kek, secret, wrapped);
            Assert.DoesNotContain(bed.Driver.Sent, d => ControlPlaintext.Contains(d, secret) || ControlPlaintext.Contains(d, wrapped));
            Assert.DoesNotContain(plaintexts, p => ControlPlaintext.Contains(p, secret) || ControlPlaintext.Contains(p, wrapped));
        }
    }

    [Fact]
    public void Wrapped_SameCheck_FindsWrappedKeyInPlaintext()
    {
        // The exposure check of the test above can fail: in wrapped mode the plaintext MH holds AES-KWP(secret).
        var kme = new FakeKmePair(5);
        using var bed = Testbed.Started(new TestbedSettings { KeySource = kme });
        var ik = bed.Node.Provisioning;
        var plaintexts = ControlPlaintext.Open(bed.Driver.Sent, [new KnownGeneration(ik.InitializationKey.ToArray(), ik.SpiMnToHa, ik.SpiHaToMn)]);
        var kek = new byte[32];
        KeyDerivation.DeriveKek(ik.InitializationKey, ik.HomeAddress, kek);
        var wrapped = new byte[40];
        KeyWrap.Wrap(kek, kme.InOrder.Single(), wrapped);
        Assert.Contains(plaintexts, p => ControlPlaintext.Contains(p, wrapped));
        Assert.Equal([(1u, false)], ControlPlaintext.KeyDistributions(plaintexts));
    }

    [Fact]
    public void Reference_FetchPending_NodeKeepsKeysAndResentKeyDistDoesNotRefetch()
    {
        var (bed, kme, resolver) = NewBed();
        using var _ = bed;
        bed.Start();
        Answer(bed, kme, resolver);
        bed.Update();
        Assert.Equal(2, resolver.Requests.Count);

        // A refresh under g1 (the HA's N-1) makes the HA resend KEY-DIST(2) (rule 3): no second fetch.
        bed.Node.Engine.MoveTo(Ipv6Address.Parse("2001:db8:100::99"));
        bed.Driver.Attach(Ipv6Address.Parse("2001:db8:100::99"), d => bed.Node.Results.Add(bed.Node.Engine.Receive(d, new byte[2048])));
        bed.Driver.Pump();
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Equal(2, resolver.Requests.Count);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        Assert.False(bed.Node.Engine.KeyArrived(Guid.NewGuid(), new byte[32]));
        bed.AssertDataFlows();

        Answer(bed, kme, resolver);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Reference_FetchFails_RetriesWithBackoffThenResendRequestAndRecovers()
    {
        var (bed, kme, resolver) = NewBed();
        using var _ = bed;
        bed.Start();
        Answer(bed, kme, resolver);
        bed.Update();
        var reference = resolver.Requests[^1];

        bed.Node.Engine.KeyFetchFailed(reference.KeyId);
        Assert.Equal(bed.Now + TimeSpan.FromSeconds(1), bed.Node.Engine.NextDeadline);
        bed.Run(TimeSpan.FromSeconds(1));
        Assert.Equal(3, resolver.Requests.Count);
        bed.Node.Engine.KeyFetchFailed(reference.KeyId);
        Assert.Equal(bed.Now + TimeSpan.FromSeconds(2), bed.Node.Engine.NextDeadline);
        bed.Run(TimeSpan.FromSeconds(2));
        Assert.Equal(4, resolver.Requests.Count);
        bed.Node.Engine.KeyFetchFailed(reference.KeyId);
        // Third failure: KEY-RESEND-REQ; the HA resends the same reference (rule 3) and the fetch starts over.
        bed.Driver.Pump();
        Assert.Equal(1, bed.Node.Engine.Counters.Resends);
        Assert.Equal(1, bed.HomeAgent.Counters.Resends);
        Assert.Equal(5, resolver.Requests.Count);
        Assert.Equal(reference, resolver.Requests[^1]);
        Assert.Equal(3, bed.Node.Engine.Counters.KeyFetchFailures);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();

        Answer(bed, kme, resolver);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Theory]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void Reference_KmeAnswersWrongSizeKey_NodeKeepsItsKeysRetriesAndInstallsTheRightOne(int length)
    {
        var (bed, kme, resolver) = NewBed();
        using var _ = bed;
        bed.Start();
        Answer(bed, kme, resolver);
        bed.Update();
        var reference = resolver.Requests[^1];
        var wrong = new byte[length];
        kme.Issued[reference.KeyId].AsSpan(0, Math.Min(length, 32)).CopyTo(wrong);

        // A longer key that starts with the right 32 octets is refused too: the KME is not answering
        // what it was asked, and a truncation would be a guess.
        Assert.False(bed.Node.Engine.KeyArrived(reference.KeyId, wrong));
        Assert.False(bed.Node.Engine.KeyArrived(reference.KeyId, wrong)); // a second bad answer while waiting to retry: one failure
        Assert.Equal(1, bed.Node.Engine.Counters.KeyFetchFailures);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
        bed.AssertDataFlows();
        bed.Run(TimeSpan.FromSeconds(1));
        Assert.Equal(3, resolver.Requests.Count);
        Answer(bed, kme, resolver);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(0, bed.Node.Engine.Counters.ReInits);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Reference_FetchNeverAnswered_TimesOutAndRetries()
    {
        var (bed, kme, resolver) = NewBed();
        using var _ = bed;
        bed.Start();
        Assert.Single(resolver.Requests);
        bed.Run(TimeSpan.FromSeconds(10));
        Assert.Equal(1, bed.Node.Engine.Counters.KeyFetchFailures);
        bed.Run(TimeSpan.FromSeconds(1));
        Assert.Equal(2, resolver.Requests.Count);
        // The late answer to the first attempt still installs (the KME hands a key out once).
        Answer(bed, kme, resolver);
        Assert.Equal(new Generation(1), bed.Node.View.Newest);
    }

    [Fact]
    public void Reference_ReferenceUnusableRoundAfterRound_NodeReinitializes()
    {
        var (bed, kme, resolver) = NewBed();
        using var _ = bed;
        bed.Start();
        Answer(bed, kme, resolver);
        bed.Update();
        var reference = resolver.Requests[^1];
        for (int i = 0; i < 9 && resolver.Requests[^1] == reference; i++)
        {
            bed.Node.Engine.KeyFetchFailed(reference.KeyId);
            bed.Run(TimeSpan.FromSeconds(4));
        }
        Assert.Equal(1, bed.Node.Engine.Counters.ReInits);
        Assert.NotEqual(reference, resolver.Requests[^1]);
        Answer(bed, kme, resolver);
        Assert.Equal(new Generation(3), bed.Node.View.Newest);
        bed.AssertDataFlows();
    }

    [Fact]
    public void Reference_NoResolver_KeyDistributionRejected()
    {
        var kme = new FakeKmePair(5);
        using var bed = Testbed.Started(new TestbedSettings { KeySource = kme, KeyDelivery = KeyDelivery.Reference });
        Assert.Equal(1, bed.Node.Engine.Counters.Dropped(DropReason.KeyDistributionRejected));
        Assert.True(bed.Node.View.AwaitingInit);
    }

    [Fact]
    public void Reference_SourceWithoutNames_ConstructorRefuses() =>
        Assert.Throws<ArgumentException>(() => new HomeAgentEngine(
            new HomeAgentOptions { Address = Testbed.HomeAgentAddress, KeyDelivery = KeyDelivery.Reference },
            TestTime.NewClock(), new SeededKeySource(1), new SeededSpiSource(1), new EngineDriver()));

    [Fact]
    public void Reference_SourceEmptyFallbackLocal_LocalKeyGoesWrappedAndInstalls()
    {
        var kme = new FakeKmePair(5);
        var resolver = new RecordingResolver();
        using var bed = new Testbed(new TestbedSettings
        {
            KeySource = kme, KeyDelivery = KeyDelivery.Reference, KeyResolver = _ => resolver, FallbackKeySource = new SeededKeySource(9),
        });
        bed.Start();
        Answer(bed, kme, resolver);
        kme.Empty = true;
        bed.Update();
        Assert.Single(resolver.Requests);
        Assert.Equal(new Generation(2), bed.Node.View.Newest);
        Assert.Equal(1, bed.HomeAgent.Counters.KeyFallbacks);
        bed.AssertDataFlows();
    }
}
