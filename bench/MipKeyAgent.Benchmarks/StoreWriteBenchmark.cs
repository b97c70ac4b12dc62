using System.Diagnostics;
using System.Globalization;
using MipKeyAgent.Protocol.HomeAgent;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.Protocol.MobileNode;
using MipKeyAgent.Store;
using MipKeyAgent.Store.Postgres;
using MipKeyAgent.Tools.Bench;
using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Benchmarks;

/// <summary>
/// The SQLite write path (the process benchmark's SQLite row): the HA's store holds N
/// bindings (written first, untimed), then the timed part re-saves existing bindings as the engine
/// does for each accepted BU (a new last sequence number and expiry, the same generation), then
/// writes IK reservations, then saves an MN store's state and keys. Every write is one fsynced
/// commit as in production; on tmpfs (the default directory <c>/dev/shm</c>) the fsync is free,
/// so this is the CPU cost per write. Each HA kind runs without and with the rollback anchor,
/// alternating twice. Prints wall and process CPU µs per write. With a PostgreSQL URL the same
/// HA writes then run on a <see cref="PostgresBindingStore"/> (with a lease, so each write also checks its fencing
/// token), one at a time and in groups of 64 (<see cref="IBindingStore.BeginGroup"/>), in the same run.
/// </summary>
internal static class StoreWriteBenchmark
{
    private const int GroupSize = 64;

    public static void Run(int bindings, int writes, string directoryRoot, TextWriter output, string? postgresUrl = null)
    {
        output.WriteLine($"store writes (SQLite in {directoryRoot}), {bindings:N0} bindings, {writes:N0} writes per kind, " +
            $"{DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC, load {File.ReadAllText("/proc/loadavg").Trim()}");
        output.WriteLine("| write | count | wall µs/write | process CPU µs/write |");
        output.WriteLine("|---|---:|---:|---:|");
        string directory = Path.Combine(directoryRoot, "mipkey-store-write-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string keyPath = Path.Combine(directory, "master.key");
            MasterKey.Create(keyPath);
            using var rig = new ScaleRig(Math.Max(bindings, 1), activeNodes: 1);
            var created = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
            var secret = new byte[KeyLengths.Secret];
            new Random(5).NextBytes(secret);
            // Without and with the rollback anchor, alternating, each on a fresh database: the anchor's cost side by side.
            for (int round = 0; round < 2; round++)
            {
                foreach (bool anchored in new[] { false, true })
                {
                    string tag = anchored ? "anchor on" : "anchor off";
                    using var sqlite = BindingStores.Open(Path.Combine(directory, $"bindings-{round}-{tag[7..]}.db"), keyPath, rollbackAnchor: anchored);
                    IBindingStore store = sqlite;
                    void SaveBinding(int i, ushort sequence, uint generation)
                    {
                        var newest = new GenerationState(new Generation(generation), secret, new Spi(0x4000_0000 + 2 * (uint)i), new Spi(0x4000_0001 + 2 * (uint)i),
                            EspSuite.AesGcm256, true, created, 64, 3, 0, null);
                        store.Save(new BindingState(rig.Provisioning(i).HomeAddress, new Ipv6Address((UInt128)i + 1), created + TimeSpan.FromHours(1) + TimeSpan.FromSeconds(sequence),
                            sequence, null, new Generation(generation), new Generation(generation), newest, default, created + TimeSpan.FromHours(1), false, 1, 0));
                    }
                    for (int i = 0; i < bindings; i++)
                    {
                        SaveBinding(i, 2, 1);
                    }
                    output.WriteLine(Time($"HA `Save` (BU: existing binding updated), {tag}", writes, k => SaveBinding(k % Math.Max(bindings, 1), (ushort)(3 + k), 1)));
                    // A new generation each time: the marks move, so the anchor appends a record per write.
                    output.WriteLine(Time($"HA `Save` (new generation), {tag}", writes, k => SaveBinding(k % Math.Max(bindings, 1), (ushort)(3 + k), 2 + (uint)k)));
                    output.WriteLine(Time($"HA `SaveInitializationSequenceReserved`, {tag}", writes, k =>
                        store.SaveInitializationSequenceReserved(rig.Provisioning(k % Math.Max(bindings, 1)).HomeAddress, 64 + 4096 * (uint)(k + 1))));
                }
            }
            if (postgresUrl is not null)
            {
                using var postgres = PostgresBindingStore.Open(PostgresUrl.Parse(postgresUrl, null, Environment.GetEnvironmentVariable("PGPASSWORD")),
                    MasterKey.Load(keyPath), ownsMasterKey: true, new LeaseOptions("bench", TimeSpan.FromMinutes(10)));
                // As the engine saves an accepted BU: a new last sequence number and expiry, the same generation.
                void SaveBinding(int i, ushort sequence)
                {
                    var newest = new GenerationState(new Generation(1), secret, new Spi(0x4000_0000 + 2 * (uint)i), new Spi(0x4000_0001 + 2 * (uint)i),
                        EspSuite.AesGcm256, true, created, 64, 3, 0, null);
                    ((IBindingStore)postgres).Save(new BindingState(rig.Provisioning(i).HomeAddress, new Ipv6Address((UInt128)i + 1), created + TimeSpan.FromHours(1) + TimeSpan.FromSeconds(sequence),
                        sequence, null, new Generation(1), new Generation(1), newest, default, created + TimeSpan.FromHours(1), false, 1, 0));
                }
                postgres.BeginGroup();
                for (int i = 0; i < bindings; i++)
                {
                    SaveBinding(i, 2);
                }
                postgres.CommitGroup();
                output.WriteLine(Time("PostgreSQL: HA `Save` (BU: existing binding updated)", writes, k => SaveBinding(k % Math.Max(bindings, 1), (ushort)(3 + k))));
                output.WriteLine(Time("PostgreSQL: HA `SaveInitializationSequenceReserved`", writes, k =>
                    postgres.SaveInitializationSequenceReserved(rig.Provisioning(k % Math.Max(bindings, 1)).HomeAddress, 64 + 4096 * (uint)(k + 1))));
                int inGroup = 0;
                output.WriteLine(Time($"PostgreSQL: HA `Save` in groups of {GroupSize} (one commit each)", writes, k =>
                {
                    if (inGroup == 0)
                    {
                        postgres.BeginGroup();
                    }
                    SaveBinding(k % Math.Max(bindings, 1), (ushort)(5 + k));
                    if (++inGroup == GroupSize)
                    {
                        postgres.CommitGroup();
                        inGroup = 0;
                    }
                }));
                if (inGroup > 0)
                {
                    postgres.CommitGroup();
                }
            }
            foreach (bool anchored in new[] { false, true })
            {
                using var mn = BindingStores.OpenMobileNode(Path.Combine(directory, anchored ? "mn-on.db" : "mn-off.db"), keyPath, rollbackAnchor: anchored);
                output.WriteLine(Time($"MN `Save` (state + one generation, reservation raised), anchor {(anchored ? "on" : "off")}", writes, k =>
                {
                    var generation = new GenerationRecord(new Generation(1), (byte[])secret.Clone(), new Spi(0x4000_0000), new Spi(0x4000_0001),
                        EspSuite.AesGcm256, true, created, 64 + 4096 * (uint)k);
                    mn.Save(new MobileNodeState(7, (ushort)k, 4096), new MobileNodeKeys(generation, null));
                }));
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string Time(string what, int count, Action<int> write)
    {
        // A short warm-up (JIT, statement caches) outside the timed part.
        for (int k = 0; k < Math.Min(200, count); k++)
        {
            write(k);
        }
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        long start = Stopwatch.GetTimestamp();
        for (int k = 0; k < count; k++)
        {
            write(k);
        }
        var wall = Stopwatch.GetElapsedTime(start);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        return string.Create(CultureInfo.InvariantCulture,
            $"| {what} | {count:N0} | {wall.TotalMicroseconds / count:F1} | {cpu.TotalMicroseconds / count:F1} |");
    }
}
