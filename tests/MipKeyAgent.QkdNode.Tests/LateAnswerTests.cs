using System.Net;
using System.Text;
using MipKeyAgent.KeySupply;
using MipKeyAgent.KeySupply.Etsi014;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.QkdNode.Tests;

/// <summary>
/// A slow KME: its enc_keys answer arrives after the HA's call timed out. The KME took those keys
/// from its pool, so the HA keeps the usable ones instead of dropping them.
/// </summary>
public sealed class LateAnswerTests
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan KmeDelay = TimeSpan.FromMilliseconds(600);

    /// <summary>Answers every enc_keys with <c>number</c> fresh 32-octet keys, after <see cref="KmeDelay"/>.</summary>
    private sealed class SlowKme : HttpMessageHandler
    {
        private int _next;
        public int Answered;
        public List<(string Id, byte Fill)> Served { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(KmeDelay, cancellationToken);
            var keys = new List<string>();
            lock (Served)
            {
                for (var i = 0; i < 2; i++)
                {
                    var n = ++_next;
                    var id = new Guid(n, 0, 0, new byte[8]).ToString();
                    Served.Add((id, (byte)n));
                    keys.Add($"{{\"key_ID\":\"{id}\",\"key\":\"{Convert.ToBase64String(Enumerable.Repeat((byte)n, 32).ToArray())}\"}}");
                }
            }
            Interlocked.Increment(ref Answered);
            return new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent($"{{\"keys\":[{string.Join(',', keys)}]}}", Encoding.UTF8, "application/json"),
            };
        }
    }

    private static async Task Until(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task SlowKme_CallTimesOut_LateKeysHandedToTheLateCallback()
    {
        var kme = new SlowKme();
        using var client = new Etsi014Client(kme, new Uri("https://kme.example:8443/"), CallTimeout);
        var late = new List<KeyContainer>();
        var result = await client.GetEncKeysAsync("SAE_MN1", new KeyRequest { Number = 2 }, late: c => { lock (late) { late.Add(c); } });
        Assert.Equal(EtsiResultKind.Timeout, result.Kind);
        await Until(() => { lock (late) { return late.Count == 1; } }, "the late answer never reached the callback");
        Assert.Equal([.. kme.Served.Select(s => s.Id)], late[0].Keys.Select(k => k.KeyId));
        Assert.Equal(Enumerable.Repeat(kme.Served[0].Fill, 32), late[0].Keys[0].Key);
    }

    [Fact]
    public async Task SlowKme_NoLateCallback_RequestEndsAtTheTimeout()
    {
        var kme = new SlowKme();
        using var client = new Etsi014Client(kme, new Uri("https://kme.example:8443/"), CallTimeout);
        var result = await client.GetEncKeysAsync("SAE_MN1", new KeyRequest { Number = 2 });
        Assert.Equal(EtsiResultKind.Timeout, result.Kind);
        await Task.Delay(KmeDelay * 2);
        Assert.Equal(0, Volatile.Read(ref kme.Answered)); // cancelled at the timeout: the handler never answered
    }

    [Fact]
    public async Task SlowKme_KeySource_LateKeysKeptCountedAndUsed()
    {
        var kme = new SlowKme();
        var client = new Etsi014Client(kme, new Uri("https://kme.example:8443/"), CallTimeout);
        var time = TestTime.NewClock(); // never advanced: the backoff after the timeout never ends, so one fetch only
        using var source = QkdKeySource.Start(client, "SAE_MN1", new KeyPrefetchOptions
        {
            MinDepth = 2, MaxDepth = 4, MaxPerRequest = 2, InitialBackoff = TimeSpan.FromHours(1),
        }, time);
        await Until(() => source.Buffer.Counters.FetchFailures == 1, "the slow fetch never timed out");
        await Until(() => source.Buffer.Count == 2, "the late answer's keys were not kept");
        var counters = source.Buffer.Counters;
        Assert.Equal(2, counters.Late);
        Assert.Equal(2, counters.Received);
        Assert.Equal(EtsiResultKind.Timeout, source.Buffer.LastResult);
        var secret = new byte[32];
        Assert.Equal(KeySourceStatus.Ok, source.TryNextSecret(secret, out string? keyId).Status);
        Assert.Equal(kme.Served[0].Id, keyId);
        Assert.Equal(Enumerable.Repeat(kme.Served[0].Fill, 32), secret);
        Assert.Equal(1, Volatile.Read(ref kme.Answered));
    }
}
