using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using MipKeyAgent.Tools.Bench;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Benchmarks;

/// <summary>
/// Engine exchanges against their crypto floors. Each category pairs a floor
/// (the baseline) with the engine doing the same cryptographic work, so BenchmarkDotNet's Ratio
/// column is engine time / floor time: the target "engine rate >= 70% of the floor rate" is
/// Ratio <= 1.43. Allocated is per operation (one exchange).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortInProcessConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
[CategoriesColumn]
public class ExchangeBenchmarks
{
    private CryptoFloor _floor = null!;
    private ExchangeRig _rig = null!;

    [Params(EspSuite.AesGcm256, EspSuite.AesCbc128HmacSha256)]
    public EspSuite Suite { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _floor = new CryptoFloor(Suite);
        _rig = new ExchangeRig(Suite);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _rig.Dispose();
        _floor.Dispose();
    }

    [Benchmark(Description = "AEAD seal+open (1 BU)")]
    [BenchmarkCategory("0 primitive")]
    public void SealOpen() => _floor.SealOpen();

    [Benchmark(Baseline = true, Description = "floor: BU+BA seal/open")]
    [BenchmarkCategory("1 steady")]
    public void SteadyFloor() => _floor.Exchange();

    [Benchmark(Description = "engine: steady BU/BA")]
    [BenchmarkCategory("1 steady")]
    public void SteadyEngine() => _rig.SteadyExchange();

    [Benchmark(Baseline = true, Description = "floor: rekey")]
    [BenchmarkCategory("2 rekey")]
    public void RekeyFloor() => _floor.RekeyExchange();

    [Benchmark(Description = "engine: rekey BU/BA")]
    [BenchmarkCategory("2 rekey")]
    public void RekeyEngine() => _rig.RekeyExchange();
}

/// <summary>
/// ShortRun (3 warm-ups, 3 iterations) in process: the build output lives under
/// $MIPKEY_ARTIFACTS, outside the source tree, where BenchmarkDotNet's generated project cannot
/// find the .csproj; in-process also keeps a full run to a few minutes.
/// </summary>
public sealed class ShortInProcessConfig : ManualConfig
{
    public ShortInProcessConfig() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
}
