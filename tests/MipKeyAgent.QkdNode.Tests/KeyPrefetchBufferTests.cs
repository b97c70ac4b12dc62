using System.Net;
using MipKeyAgent.KeySupply;
using MipKeyAgent.KeySupply.Etsi014;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.QkdNode.Tests;

public sealed class KeyPrefetchBufferTests
{
    /// <summary>A KME stand-in answering synchronously, so a manual clock drives everything.</summary>
    private sealed class FakeKme
    {
        private int _next;
        public List<int> Requests { get; } = [];
        public Func<int, EtsiResult<KeyContainer>>? Answer { get; set; }

        public Task<EtsiResult<KeyContainer>> Fetch(int n, CancellationToken _)
        {
            Requests.Add(n);
            return Task.FromResult(Answer?.Invoke(n) ?? EtsiResult<KeyContainer>.Ok(Keys(n)));
        }

        public KeyContainer Keys(int n) =>
            new() { Keys = [.. Enumerable.Range(0, n).Select(_ => new EtsiKey { KeyId = $"k{_next++}", Key = [1, 2, 3, 4] })] };
    }

    private static readonly KeyPrefetchOptions Options = new()
    {
        MinDepth = 2, MaxDepth = 40, Horizon = TimeSpan.FromSeconds(5), DemandWindow = TimeSpan.FromSeconds(10),
        MaxPerRequest = 16, InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(8),
    };

    [Fact]
    public void Start_NoDemand_FillsToMinDepthInOneRequest()
    {
        var kme = new FakeKme();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, TestTime.NewClock());
        buffer.Start();
        Assert.Equal([2], kme.Requests);
        Assert.Equal(2, buffer.Count);
    }

    [Fact]
    public void TryTake_KeysInOrder_RefillsBehind()
    {
        var kme = new FakeKme();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, TestTime.NewClock());
        buffer.Start();
        Assert.True(buffer.TryTake(out var first));
        Assert.Equal("k0", first.KeyId);
        Assert.True(buffer.TryTake(out var second));
        Assert.Equal("k1", second.KeyId);
        Assert.True(buffer.Count >= 2);
    }

    [Fact]
    public void Demand_TwoTakesPerSecond_DepthGrowsToRateTimesHorizonInBoundedRequests()
    {
        var kme = new FakeKme();
        var time = TestTime.NewClock();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, time);
        buffer.Start();
        for (var i = 0; i < 20; i++)
        {
            Assert.True(buffer.TryTake(out _));
            time.Advance(TimeSpan.FromMilliseconds(500));
        }
        Assert.Equal(10, buffer.TargetDepth); // 20 takes / 10 s window * 5 s horizon
        Assert.Equal(10, buffer.Count);
        Assert.All(kme.Requests, n => Assert.InRange(n, 1, 16));

        // Demand gone: after a full window the target falls back to the minimum.
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(2, buffer.TargetDepth);
    }

    [Fact]
    public void Demand_AboveMaxPerRequest_SplitIntoSeveralRequests()
    {
        var kme = new FakeKme();
        var time = TestTime.NewClock();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, time);
        for (var i = 0; i < 80; i++)
        {
            buffer.TryTake(out _);
        }
        Assert.Equal(40, buffer.TargetDepth); // 80 / 10 * 5 = 40 = MaxDepth
        Assert.Equal(40, buffer.Count);
        Assert.True(kme.Requests.Max() <= 16);
    }

    [Fact]
    public void FetchFails_NoKeyNow_BacksOffExponentiallyToCapThenRecovers()
    {
        var kme = new FakeKme { Answer = _ => EtsiResult<KeyContainer>.NoKeyNow(HttpStatusCode.ServiceUnavailable, null, null, "empty") };
        var time = TestTime.NewClock();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, time);
        buffer.Start();
        Assert.Single(kme.Requests);
        Assert.Equal(TimeSpan.FromSeconds(1), buffer.CurrentBackoff);

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Single(kme.Requests);
        Assert.False(buffer.TryTake(out _)); // a take during backoff does not hammer the KME
        Assert.Single(kme.Requests);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, kme.Requests.Count);
        Assert.Equal(TimeSpan.FromSeconds(2), buffer.CurrentBackoff);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(3, kme.Requests.Count);
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(4, kme.Requests.Count);
        Assert.Equal(TimeSpan.FromSeconds(8), buffer.CurrentBackoff);
        time.Advance(TimeSpan.FromSeconds(8));
        Assert.Equal(5, kme.Requests.Count);
        Assert.Equal(TimeSpan.FromSeconds(8), buffer.CurrentBackoff); // capped
        Assert.Equal(5, buffer.ConsecutiveFailures);

        kme.Answer = null;
        time.Advance(TimeSpan.FromSeconds(8));
        Assert.Equal(0, buffer.ConsecutiveFailures);
        Assert.Equal(TimeSpan.Zero, buffer.CurrentBackoff);
        Assert.True(buffer.Count >= 2);
    }

    [Fact]
    public void FetchShort_200WithFewerKeys_KeepsThemAndBacksOff()
    {
        var kme = new FakeKme();
        kme.Answer = n => EtsiResult<KeyContainer>.NoKeyNow(HttpStatusCode.OK, null, kme.Keys(1), "short");
        var time = TestTime.NewClock();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, time);
        buffer.Start();
        Assert.Equal(1, buffer.Count);
        Assert.Single(kme.Requests);
        Assert.Equal(EtsiResultKind.NoKeyNow, buffer.LastResult);
    }

    [Fact]
    public void FetchFails_Timeout_BacksOff()
    {
        var kme = new FakeKme { Answer = _ => EtsiResult<KeyContainer>.TimedOut(TimeSpan.FromSeconds(5)) };
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, TestTime.NewClock());
        buffer.Start();
        Assert.Equal(1, buffer.ConsecutiveFailures);
        Assert.Equal(EtsiResultKind.Timeout, buffer.LastResult);
    }

    [Fact]
    public void Dispose_BufferedKeys_Zeroed()
    {
        var kme = new FakeKme();
        var buffer = new KeyPrefetchBuffer(kme.Fetch, Options, TestTime.NewClock());
        var handed = new List<byte[]>();
        kme.Answer = n =>
        {
            var c = kme.Keys(n);
            handed.AddRange(c.Keys.Select(k => k.Key));
            return EtsiResult<KeyContainer>.Ok(c);
        };
        buffer.Start();
        buffer.Dispose();
        Assert.Equal(2, handed.Count);
        Assert.All(handed, bytes => Assert.All(bytes, b => Assert.Equal(0, b)));
    }

    [Fact]
    public async Task AgainstNode_RealClient_FillsAndTakesKeysTheSlaveCanDecrypt()
    {
        await using var node = await Nodes.StartSingleAsync(prefill: 6);
        using var ha = Nodes.Client(node.Address, "SAE_HA");
        using var mn = Nodes.Client(node.Address, "SAE_MN1");
        using var buffer = new KeyPrefetchBuffer((n, ct) => ha.GetEncKeysAsync("SAE_MN1", new KeyRequest { Number = n }, ct), Options, TimeProvider.System);
        buffer.Start();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (buffer.Count < 2)
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(10);
        }
        Assert.True(buffer.TryTake(out var key));
        var dec = await mn.GetDecKeysAsync("SAE_HA", key.KeyId);
        Assert.Equal(key.Key, Assert.Single(dec.Value!.Keys).Key);
    }

    [Fact]
    public void AllOrNothingKme_FewKeysLeft_RequestsShrinkUntilTheLastKeysAreServed()
    {
        var kme = new FakeKme();
        int left = 3;
        kme.Answer = n =>
        {
            if (n > left)
            {
                return EtsiResult<KeyContainer>.NoKeyNow(HttpStatusCode.ServiceUnavailable, null, null, "not enough keys available");
            }
            left -= n;
            return EtsiResult<KeyContainer>.Ok(kme.Keys(n));
        };
        var time = TestTime.NewClock();
        using var buffer = new KeyPrefetchBuffer(kme.Fetch, new KeyPrefetchOptions
        {
            MinDepth = 16, MaxDepth = 16, MaxPerRequest = 16, InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(1),
        }, time);
        buffer.Start();
        for (int i = 0; i < 6; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.Equal(3, buffer.Count);
        Assert.Equal(0, left);
        Assert.Equal([16, 8, 4, 2], kme.Requests.Take(4));
    }
}
