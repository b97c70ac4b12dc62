using System.Collections.Concurrent;
using MipKeyAgent.Protocol;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Simulation;

/// <summary>
/// The seeded random schedules again over the client/server carriage (PROTOCOL.md section 11): BU and BA as
/// UDP-encapsulated ESP, each node behind a NAT whose public port changes whenever the node restarts. The same
/// faults, crashes and invariants as <see cref="RandomScheduleTests"/>, and no (key, counter) pair twice on the
/// link. MIPKEY_SIM_SCHEDULES changes the count (at least 1,000 for the suite).
/// </summary>
[Collection(nameof(RandomScheduleCollection))]
public sealed class UdpRandomScheduleTests
{
    private const int DefaultSchedules = 1_000;

    [Fact]
    public void RandomSchedules_UdpCarriage_InvariantsHoldAndNoCounterReuse()
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("MIPKEY_SIM_SCHEDULES"), out int n) ? Math.Min(n, DefaultSchedules) : DefaultSchedules;
        var failures = new ConcurrentBag<string>();
        long carried = 0;
        long delivered = 0;
        Parallel.For(1, 1 + count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            var plain = RandomSchedule.Create(seed);
            var schedule = plain with { Options = plain.Options with { Carriage = Carriage.Udp } };
            try
            {
                using var capture = new MemoryStream();
                var outcome = new ScheduleRunner(schedule, null, capture).Run();
                capture.Position = 0;
                var report = EspCounterUniqueness.Check(capture, $"seed {seed}");
                capture.Position = 0;
                Interlocked.Add(ref carried, CountFromEndpoints(capture));
                Interlocked.Add(ref delivered, outcome.DataDelivered);
                if (outcome.Violations.Count > 0)
                {
                    failures.Add($"seed {seed}: {outcome.Violations[0]}");
                }
                if (report.Reuses.Count > 0)
                {
                    failures.Add($"seed {seed}: {report}");
                }
            }
            catch (Exception ex)
            {
                failures.Add($"seed {seed}: exception {ex.GetType().Name}: {ex.Message}");
            }
        });

        Assert.True(failures.IsEmpty, $"{failures.Count} schedule(s) failed: {string.Join(" | ", failures.Take(5))}");
        Assert.True(delivered > 0 && carried > count, $"data delivered {delivered}, datagrams from NAT endpoints {carried}");
    }

    // Datagrams to the HA as its UDP transport hands them over: from an endpoint name, no Home Address option.
    private static int CountFromEndpoints(Stream pcap)
    {
        int carried = 0;
        Assert.True(CaptureFileReader.TryOpen(pcap, leaveOpen: true, out var reader).IsOk);
        using (reader)
        {
            while (reader!.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                if (LinkLayer.TryGetIpv6(record.LinkType, record.Data.Span, out int offset).IsOk
                    && Ipv6Datagram.TryParse(record.Data.Span[offset..], out var parsed).IsOk
                    && UdpEncapsulation.IsEndpointName(parsed.Header.Source) && parsed.HomeAddress is null)
                {
                    carried++;
                }
            }
        }
        return carried;
    }
}
