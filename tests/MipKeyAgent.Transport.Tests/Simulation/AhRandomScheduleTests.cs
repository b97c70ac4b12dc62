using System.Collections.Concurrent;
using MipKeyAgent.Esp;
using MipKeyAgent.TestSupport;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Transport.Tests.Simulation;

/// <summary>
/// The seeded random schedules again with every node on suite 3 (AH-only signalling, PROTOCOL.md
/// section 9): the same faults, crashes and invariants as <see cref="RandomScheduleTests"/>, and no
/// (key, counter) pair twice on the link, AH and ESP packets alike. MIPKEY_SIM_SCHEDULES changes the
/// count (at least 1,000 for the suite).
/// </summary>
[Collection(nameof(RandomScheduleCollection))]
public sealed class AhRandomScheduleTests
{
    private const int DefaultSchedules = 1_000;

    [Fact]
    public void RandomSchedules_Suite3_InvariantsHoldAndNoCounterReuse()
    {
        int count = int.TryParse(Environment.GetEnvironmentVariable("MIPKEY_SIM_SCHEDULES"), out int n) ? Math.Min(n, DefaultSchedules) : DefaultSchedules;
        var failures = new ConcurrentBag<string>();
        long authenticated = 0;
        long delivered = 0;
        Parallel.For(1, 1 + count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            var plain = RandomSchedule.Create(seed);
            var schedule = plain with { Options = plain.Options with { Suite = EspSuite.AhHmacSha256 } };
            try
            {
                using var capture = new MemoryStream();
                var outcome = new ScheduleRunner(schedule, null, capture).Run();
                capture.Position = 0;
                var report = EspCounterUniqueness.Check(capture, $"seed {seed}");
                capture.Position = 0;
                Interlocked.Add(ref authenticated, CountAh(capture));
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
        Assert.True(delivered > 0 && authenticated > count, $"data delivered {delivered}, AH datagrams {authenticated}");
    }

    // Control datagrams on the link that carry AH (suite 3 in effect, not ESP).
    private static int CountAh(Stream pcap)
    {
        int ah = 0;
        Assert.True(CaptureFileReader.TryOpen(pcap, leaveOpen: true, out var reader).IsOk);
        using (reader)
        {
            while (reader!.TryReadNext(out var record, out bool end).IsOk && !end)
            {
                if (LinkLayer.TryGetIpv6(record.LinkType, record.Data.Span, out int offset).IsOk
                    && Ipv6Datagram.TryParse(record.Data.Span[offset..], out var parsed).IsOk
                    && parsed.UpperProtocol == IpProtocol.AuthenticationHeader)
                {
                    ah++;
                }
            }
        }
        return ah;
    }
}
