using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Benchmarks;

/// <summary>
/// AES Key Wrap with Padding (RFC 5649) of one 32-octet generation secret under a 256-bit KEK,
/// wrap then unwrap (what a rekey costs the HA plus the MN):
/// <list type="bullet">
/// <item>the baseline: the runtime's <see cref="Aes.EncryptKeyWrapPadded(ReadOnlySpan{byte}, Span{byte})"/>
/// and <see cref="Aes.TryDecryptKeyWrapPadded"/> with an <see cref="Aes"/> created and keyed per call
/// (the key ring holds raw KEKs, not cipher objects);</item>
/// <item><see cref="KeyWrap"/>: BouncyCastle's RFC 5649 engine, one per thread, re-keyed per call.</item>
/// </list>
/// Both produce the same octets (KeyWrapTests checks that on random inputs).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(KeyWrapBenchmarkConfig))]
public class KeyWrapBenchmarks
{
    private readonly byte[] _kek = new byte[KeyWrap.KekLength];
    private readonly byte[] _secret = new byte[KeyWrap.KeyLength];
    private readonly byte[] _wrapped = new byte[KeyWrap.WrappedLength];
    private readonly byte[] _unwrapped = new byte[KeyWrap.WrappedLength];

    [GlobalSetup]
    public void Setup()
    {
        new Random(5649).NextBytes(_kek);
        new Random(32).NextBytes(_secret);
    }

    [Benchmark(Baseline = true, Description = "runtime Aes KWP: wrap+unwrap")]
    public int Runtime()
    {
        using (Aes aes = Aes.Create())
        {
            aes.SetKey(_kek);
            aes.EncryptKeyWrapPadded(_secret, _wrapped);
        }

        using (Aes aes = Aes.Create())
        {
            aes.SetKey(_kek);
            aes.TryDecryptKeyWrapPadded(_wrapped, _unwrapped, out int written);
            return written;
        }
    }

    [Benchmark(Description = "KeyWrap (BouncyCastle): wrap+unwrap")]
    public int BouncyCastle()
    {
        KeyWrap.Wrap(_kek, _secret, _wrapped);
        KeyWrap.TryUnwrap(_kek, _wrapped, _unwrapped, out int written);
        return written;
    }
}

public sealed class KeyWrapBenchmarkConfig : ManualConfig
{
    public KeyWrapBenchmarkConfig() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
}
