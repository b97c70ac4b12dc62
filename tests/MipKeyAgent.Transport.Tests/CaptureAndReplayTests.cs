using Microsoft.Extensions.Time.Testing;
using System.Buffers.Binary;
using System.Threading.Channels;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Transport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests;

public sealed class CaptureAndReplayTests
{
    private static readonly Ipv6Address HomeAgent = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly Ipv6Address HomeAddress = Ipv6Address.Parse("2001:db8:1::100");
    private static readonly Ipv6Address CareOf = Ipv6Address.Parse("2001:db8:2::100");
    private static readonly DateTimeOffset Start = TestTime.Start;

    [Fact]
    public async Task Capturing_SendAndReceive_RecordsBothWithInjectedTimestamps()
    {
        var time = new FakeTimeProvider(Start);
        var inner = new QueueTransport();
        var stream = new MemoryStream();
        var sent = TestDatagrams.HomeAddressEsp(CareOf, HomeAgent, HomeAddress, 0x100, 1);
        var received = TestDatagrams.RoutingType2Esp(HomeAgent, CareOf, HomeAddress, 0x101, 1);

        await using (var capturing = new CapturingTransport(inner, new PcapWriter(stream, PcapLinkType.Ipv6, leaveOpen: true), time))
        {
            await capturing.SendAsync(sent);
            time.Advance(TimeSpan.FromMilliseconds(1500));
            inner.Inbound.Writer.TryWrite(received);
            var buffer = new byte[2048];
            var length = await capturing.ReceiveAsync(buffer);
            Assert.Equal(received.Length, length);
            Assert.Equal(2, capturing.Recorded);
            Assert.Equal("capture(queue)", capturing.Name);
        }

        var records = ReadAll(stream);
        Assert.Equal(2, records.Count);
        Assert.All(records, r => Assert.Equal(PcapLinkType.Ipv6, r.LinkType));
        Assert.Equal(Start, records[0].Timestamp);
        Assert.Equal(Start.AddMilliseconds(1500), records[1].Timestamp);
        Assert.Equal(sent, records[0].Data.ToArray());
        Assert.Equal(received, records[1].Data.ToArray());
        Assert.Equal([sent], inner.Sent);
        Assert.True(inner.Disposed);
    }

    [Fact]
    public async Task Capturing_ConcurrentSenders_EveryRecordWhole()
    {
        var inner = new QueueTransport();
        var stream = new MemoryStream();
        await using (var capturing = new CapturingTransport(inner, new PcapWriter(stream, PcapLinkType.Ipv6, leaveOpen: true), new FakeTimeProvider(Start)))
        {
            await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
            {
                for (var i = 0; i < 250; i++)
                {
                    await capturing.SendAsync(TestDatagrams.HomeAddressEsp(CareOf, HomeAgent, HomeAddress, (uint)worker, (uint)i, payloadLength: 16 + (i % 64)));
                }
            })));
        }

        var records = ReadAll(stream);
        Assert.Equal(2000, records.Count);
        Assert.All(records, r => Assert.True(Ipv6Datagram.TryParse(r.Data.Span, out var d).IsOk && d.UpperProtocol == IpProtocol.Esp));
        for (var worker = 0; worker < 8; worker++)
        {
            var sequences = records.Select(r => r.Data.Span.ToArray())
                .Where(d => BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(64)) == worker)
                .Select(d => BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(68)))
                .ToList();
            Assert.Equal(Enumerable.Range(0, 250).Select(i => (uint)i), sequences);
        }
    }

    [Fact]
    public void Capturing_EthernetCapture_IsRejected()
    {
        using var writer = new PcapWriter(new MemoryStream(), PcapLinkType.Ethernet);
        Assert.Throws<ArgumentException>(() => new CapturingTransport(new QueueTransport(), writer, TimeProvider.System));
    }

    [Fact]
    public async Task Replay_EthernetCapture_YieldsIpv6DatagramsOnlyThenZero()
    {
        var first = TestDatagrams.HomeAddressEsp(CareOf, HomeAgent, HomeAddress, 0x100, 1);
        var second = TestDatagrams.Other(HomeAgent, CareOf, payloadLength: 0);
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, PcapLinkType.Ethernet, leaveOpen: true))
        {
            writer.Write(Start, EthernetFrame(0x86DD, first));
            writer.Write(Start.AddSeconds(1), EthernetFrame(0x0806, new byte[28])); // ARP
            // 802.1Q tag, then IPv6 padded to the 60-octet minimum frame.
            byte[] tagged = [.. EthernetFrame(0x8100, [0x00, 0x05, 0x86, 0xDD, .. second]), .. new byte[60 - 18 - second.Length]];
            writer.Write(Start.AddSeconds(2), tagged);
        }

        stream.Position = 0;
        Assert.True(CaptureFileReader.TryOpen(stream, out var reader).IsOk);
        await using var replay = new PcapReplayTransport(reader!);
        var buffer = new byte[2048];

        Assert.Equal(first.Length, await replay.ReceiveAsync(buffer));
        Assert.Equal(first, buffer[..first.Length]);
        Assert.Equal(Start, replay.LastTimestamp);

        Assert.Equal(second.Length, await replay.ReceiveAsync(buffer));
        Assert.Equal(second, buffer[..second.Length]);
        Assert.Equal(Start.AddSeconds(2), replay.LastTimestamp);
        Assert.Equal(1, replay.Skipped);

        Assert.Equal(0, await replay.ReceiveAsync(buffer));
        Assert.Equal(0, await replay.ReceiveAsync(buffer));
    }

    [Fact]
    public async Task Replay_RawLinkType_SkipsIpv4()
    {
        var datagram = TestDatagrams.HomeAddressEsp(CareOf, HomeAgent, HomeAddress, 7, 7);
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, PcapLinkType.Raw, leaveOpen: true))
        {
            writer.Write(Start, [0x45, 0, 0, 20, .. new byte[16]]);
            writer.Write(Start, datagram);
        }

        stream.Position = 0;
        Assert.True(CaptureFileReader.TryOpen(stream, out var reader).IsOk);
        await using var replay = new PcapReplayTransport(reader!);
        var buffer = new byte[2048];

        Assert.Equal(datagram.Length, await replay.ReceiveAsync(buffer));
        Assert.Equal(1, replay.Skipped);
        Assert.Equal(0, await replay.ReceiveAsync(buffer));
    }

    [Fact]
    public async Task Replay_Sent_KeptInListAndCaptureStampedWithReplayedTime()
    {
        var request = TestDatagrams.HomeAddressEsp(CareOf, HomeAgent, HomeAddress, 1, 1);
        var answer = TestDatagrams.RoutingType2Esp(HomeAgent, CareOf, HomeAddress, 2, 1);
        var input = CaptureOf(PcapLinkType.Ipv6, (Start.AddSeconds(5), request));
        var sentStream = new MemoryStream();

        Assert.True(CaptureFileReader.TryOpen(input, out var reader).IsOk);
        await using (var replay = new PcapReplayTransport(reader!, new PcapWriter(sentStream, PcapLinkType.Ipv6, leaveOpen: true)))
        {
            await replay.ReceiveAsync(new byte[2048]);
            await replay.SendAsync(answer);
            Assert.Equal([answer], replay.Sent.Select(m => m.ToArray()));
        }

        var records = ReadAll(sentStream);
        Assert.Single(records);
        Assert.Equal(Start.AddSeconds(5), records[0].Timestamp);
        Assert.Equal(answer, records[0].Data.ToArray());
    }

    [Fact]
    public async Task Replay_TruncatedCapture_ThrowsInvalidDataWithTypedError()
    {
        var input = CaptureOf(PcapLinkType.Ipv6, (Start, TestDatagrams.Other(CareOf, HomeAgent)));
        var bytes = input.ToArray()[..^5];

        Assert.True(CaptureFileReader.TryOpen(new MemoryStream(bytes), out var reader).IsOk);
        await using var replay = new PcapReplayTransport(reader!);

        var e = await Assert.ThrowsAsync<InvalidDataException>(async () => await replay.ReceiveAsync(new byte[2048]));
        Assert.Contains("Truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replay_BufferTooSmall_Throws()
    {
        var input = CaptureOf(PcapLinkType.Ipv6, (Start, TestDatagrams.Other(CareOf, HomeAgent, payloadLength: 100)));
        Assert.True(CaptureFileReader.TryOpen(input, out var reader).IsOk);
        await using var replay = new PcapReplayTransport(reader!);

        await Assert.ThrowsAsync<ArgumentException>(async () => await replay.ReceiveAsync(new byte[100]));
    }

    [Fact]
    public async Task CaptureThenReplay_SameDatagrams_InOrder()
    {
        var datagrams = Enumerable.Range(0, 10).Select(i => TestDatagrams.HomeAddressEsp(CareOf, HomeAgent, HomeAddress, 9, (uint)i)).ToList();
        var inner = new QueueTransport();
        var stream = new MemoryStream();
        await using (var capturing = new CapturingTransport(inner, new PcapWriter(stream, PcapLinkType.Ipv6, leaveOpen: true), new FakeTimeProvider(Start)))
        {
            foreach (var d in datagrams)
            {
                inner.Inbound.Writer.TryWrite(d);
                await capturing.ReceiveAsync(new byte[2048]);
            }
        }

        stream.Position = 0;
        Assert.True(CaptureFileReader.TryOpen(stream, out var reader).IsOk);
        await using var replay = new PcapReplayTransport(reader!);
        var buffer = new byte[2048];
        foreach (var expected in datagrams)
        {
            var length = await replay.ReceiveAsync(buffer);
            Assert.Equal(expected, buffer[..length]);
        }

        Assert.Equal(0, await replay.ReceiveAsync(buffer));
    }

    private static byte[] EthernetFrame(ushort etherType, byte[] payload)
    {
        var frame = new byte[Ethernet.HeaderLength + payload.Length];
        Ethernet.WriteHeader(frame, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], etherType);
        payload.CopyTo(frame, Ethernet.HeaderLength);
        return frame;
    }

    private static MemoryStream CaptureOf(PcapLinkType linkType, params (DateTimeOffset Time, byte[] Data)[] records)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, linkType, leaveOpen: true))
        {
            foreach (var (time, data) in records)
            {
                writer.Write(time, data);
            }
        }

        stream.Position = 0;
        return stream;
    }

    private static List<PcapRecord> ReadAll(MemoryStream stream)
    {
        stream.Position = 0;
        Assert.True(CaptureFileReader.TryOpen(stream, leaveOpen: true, out var reader).IsOk);
        var records = new List<PcapRecord>();
        using (reader)
        {
            while (true)
            {
                var error = reader!.TryReadNext(out var record, out var end);
                Assert.True(error.IsOk, error.ToString());
                if (end)
                {
                    return records;
                }

                records.Add(record);
            }
        }
    }

    /// <summary>The smallest transport: a channel in, a list out.</summary>
    private sealed class QueueTransport : IDatagramTransport
    {
        private readonly List<byte[]> _sent = [];

        public Channel<byte[]> Inbound { get; } = Channel.CreateUnbounded<byte[]>();

        public List<byte[]> Sent
        {
            get
            {
                lock (_sent)
                {
                    return [.. _sent];
                }
            }
        }

        public bool Disposed { get; private set; }

        public string Name => "queue";

        public ValueTask SendAsync(ReadOnlyMemory<byte> datagram, CancellationToken cancellationToken = default)
        {
            lock (_sent)
            {
                _sent.Add(datagram.ToArray());
            }

            return ValueTask.CompletedTask;
        }

        public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var datagram = await Inbound.Reader.ReadAsync(cancellationToken);
            datagram.CopyTo(buffer);
            return datagram.Length;
        }

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
