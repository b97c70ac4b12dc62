using System.Buffers.Binary;
using System.Diagnostics;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Benchmarks;

/// <summary>
/// Reading a large capture: <see cref="CaptureFileReader"/> (libpcap through SharpPcap, by path) against a managed span reader of classic pcap doing the least any reader must
/// (a 16-octet record header, one array per record, as <see cref="PcapRecord"/> asks). The file is
/// the golden <c>many-nodes</c> capture's datagrams repeated to <c>packets</c> records, on
/// /dev/shm; each reader runs three rounds in alternation and the best round counts.
/// </summary>
internal static class CaptureReadBenchmark
{
    public static void Run(int packets, string capturesDirectory, TextWriter output)
    {
        string path = Path.Combine(Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath(), $"mipkey-capture-read-{Environment.ProcessId}.pcap");
        try
        {
            long octets = Write(path, packets, Path.Combine(capturesDirectory, "many-nodes.pcap"));
            output.WriteLine($"capture-read: {packets:N0} records, {octets / 1e6:0.0} MB, libpcap {Libpcap.Version}");
            var readers = new (string Name, Func<string, long> Read)[]
            {
                ("managed span reader (classic pcap)", SpanReader),
                ("CaptureFileReader, file (libpcap)", path => ReadWithLibpcap(path, fromMemory: false)),
            };
            var best = readers.Select(_ => TimeSpan.MaxValue).ToArray();
            for (int round = 0; round < 3; round++)
            {
                for (int i = 0; i < readers.Length; i++)
                {
                    var watch = Stopwatch.StartNew();
                    long read = readers[i].Read(path);
                    watch.Stop();
                    if (read != packets)
                    {
                        throw new InvalidOperationException($"{readers[i].Name} read {read} records, not {packets}");
                    }

                    best[i] = watch.Elapsed < best[i] ? watch.Elapsed : best[i];
                }
            }

            output.WriteLine($"{"reader",-48} {"best of 3",10} {"ns/record",10} {"ratio",6}");
            for (int i = 0; i < readers.Length; i++)
            {
                output.WriteLine($"{readers[i].Name,-48} {best[i].TotalMilliseconds,8:0} ms {best[i].TotalNanoseconds / packets,10:0} {best[i] / best[0],6:0.00}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static long Write(string path, int packets, string golden)
    {
        var datagrams = new List<byte[]>();
        Require(CaptureFileReader.TryOpen(golden, out var reader));
        using (reader)
        {
            while (Require(reader!.TryReadNext(out var record, out bool end)) && !end)
            {
                datagrams.Add(record.Data.ToArray());
            }
        }

        var start = DateTimeOffset.FromUnixTimeSeconds(1_767_225_600);
        using (var writer = new PcapWriter(new BufferedStream(File.Create(path), 1 << 20), PcapLinkType.Ipv6))
        {
            for (int i = 0; i < packets; i++)
            {
                writer.Write(start.AddTicks(i * 10L), datagrams[i % datagrams.Count]);
            }
        }

        return new FileInfo(path).Length;
    }

    private static long ReadWithLibpcap(string path, bool fromMemory)
    {
        CaptureFileReader? reader;
        Require(fromMemory ? CaptureFileReader.TryOpen(File.OpenRead(path), out reader) : CaptureFileReader.TryOpen(path, out reader));
        long count = 0;
        long octets = 0;
        using (reader)
        {
            while (Require(reader!.TryReadNext(out var record, out bool end)) && !end)
            {
                count++;
                octets += record.Data.Length;
            }
        }

        GC.KeepAlive(octets);
        return count;
    }

    /// <summary>Classic little-endian pcap, microseconds: the least a managed reader does per record.</summary>
    private static long SpanReader(string path)
    {
        using var stream = new BufferedStream(File.OpenRead(path), 64 * 1024);
        Span<byte> header = stackalloc byte[24];
        stream.ReadExactly(header);
        long count = 0;
        long octets = 0;
        Span<byte> record = stackalloc byte[16];
        while (stream.ReadAtLeast(record, 16, throwOnEndOfStream: false) == 16)
        {
            uint seconds = BinaryPrimitives.ReadUInt32LittleEndian(record);
            uint micros = BinaryPrimitives.ReadUInt32LittleEndian(record[4..]);
            int captured = BinaryPrimitives.ReadInt32LittleEndian(record[8..]);
            int original = BinaryPrimitives.ReadInt32LittleEndian(record[12..]);
            var data = new byte[captured];
            stream.ReadExactly(data);
            var time = DateTimeOffset.UnixEpoch.AddTicks((seconds * TimeSpan.TicksPerSecond) + (micros * 10L));
            var parsed = new PcapRecord(time, PcapLinkType.Ipv6, data, original);
            octets += parsed.Data.Length;
            count++;
        }

        GC.KeepAlive(octets);
        return count;
    }

    private static bool Require(WireError error) => error.IsOk ? true : throw new InvalidDataException(error.ToString());
}
