using System.Net;
using MipKeyAgent.KeySupply;
using MipKeyAgent.KeySupply.Etsi014;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.TestSupport;

namespace MipKeyAgent.QkdNode.Tests;

public sealed class QkdKeySourceTests
{
    private static readonly KeyPrefetchOptions Options = new()
    {
        MinDepth = 1, MaxDepth = 4, MaxPerRequest = 4, InitialBackoff = TimeSpan.FromSeconds(3), MaxBackoff = TimeSpan.FromSeconds(30),
    };

    [Fact]
    public void EmptyKme_TryNextSecret_UnavailableWithRetryAfterOfBackoff()
    {
        var buffer = new KeyPrefetchBuffer(
            (_, _) => Task.FromResult(EtsiResult<KeyContainer>.NoKeyNow(HttpStatusCode.ServiceUnavailable, null, null, "empty")),
            Options, TestTime.NewClock());
        using var source = new QkdKeySource(buffer);
        buffer.Start();
        var result = source.TryNextSecret(new byte[32]);
        Assert.Equal(KeySourceStatus.Unavailable, result.Status);
        Assert.Equal(TimeSpan.FromSeconds(3), result.RetryAfter);
    }

    [Fact]
    public void ShortKeyFromKme_TryNextSecret_SkippedNotUsed()
    {
        var answers = new Queue<KeyContainer>([
            new KeyContainer { Keys = [new EtsiKey { KeyId = "short", Key = new byte[16] }] },
            new KeyContainer { Keys = [new EtsiKey { KeyId = "good", Key = [.. Enumerable.Range(1, 32).Select(i => (byte)i)] }] },
        ]);
        var buffer = new KeyPrefetchBuffer((_, _) => Task.FromResult(EtsiResult<KeyContainer>.Ok(answers.Dequeue())), Options, TestTime.NewClock());
        using var source = new QkdKeySource(buffer);
        buffer.Start();
        var secret = new byte[32];
        Assert.True(source.TryNextSecret(secret, out var keyId).IsOk);
        Assert.Equal("good", keyId);
        Assert.Equal(1, secret[0]);
        Assert.Equal(32, secret[31]);
    }

    [Fact]
    public async Task AgainstNode_Secrets_AreTheKeysTheSlaveGetsByKeyId()
    {
        await using var node = await Nodes.StartSingleAsync(prefill: 8);
        using var mn = Nodes.Client(node.Address, "SAE_MN1");
        using var source = QkdKeySource.Start(Nodes.Client(node.Address, "SAE_HA"), "SAE_MN1", Options, TimeProvider.System);
        var secret = new byte[32];
        string? keyId = null;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!source.TryNextSecret(secret, out keyId).IsOk)
        {
            Assert.True(DateTime.UtcNow < deadline);
            await Task.Delay(10);
        }
        var dec = await mn.GetDecKeysAsync("SAE_HA", keyId!);
        Assert.Equal(secret, Assert.Single(dec.Value!.Keys).Key);
    }
}
