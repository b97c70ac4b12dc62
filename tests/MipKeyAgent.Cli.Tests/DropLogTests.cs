using MipKeyAgent.Hosting;
using MipKeyAgent.Protocol;
using MipKeyAgent.Protocol.Keys;
using MipKeyAgent.TestSupport;
using Microsoft.Extensions.Logging;

namespace MipKeyAgent.Cli.Tests;

/// <summary>Drop logging is rate-limited and summarised per reason (PROTOCOL.md section 8.10).</summary>
public sealed class DropLogTests
{
    private sealed class Lines : ILogger
    {
        public List<string> Written { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Written.Add(formatter(state, exception));
    }

    [Fact]
    public void Flood_TenThousandDropsOverFiveSeconds_OneLinePerReasonPerSecond()
    {
        var clock = TestTime.NewClock();
        var lines = new Lines();
        var drops = new DropLog(lines, clock);

        // 10,000 forged datagrams and 2,000 unknown SPIs over 5 s, the host loop flushing at NextDue.
        for (int i = 0; i < 10_000; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(0.5));
            drops.Record("mn1", DropReason.AuthenticationFailed, Generation.Initialization);
            if (i % 5 == 0)
            {
                drops.Record("?", DropReason.UnknownSpi, default);
            }
            if (drops.NextDue is { } due && due <= clock.GetUtcNow())
            {
                drops.Flush();
            }
        }
        drops.Flush(all: true);

        var auth = lines.Written.Where(l => l.Contains("AuthenticationFailed", StringComparison.Ordinal)).ToList();
        var unknown = lines.Written.Where(l => l.Contains("UnknownSpi", StringComparison.Ordinal)).ToList();
        // 5 s: the first drop, then at most one summary per second, plus the final flush.
        Assert.InRange(auth.Count, 2, 7);
        Assert.InRange(unknown.Count, 2, 7);
        Assert.Equal(auth.Count + unknown.Count, lines.Written.Count);
        Assert.StartsWith("dropped a datagram from mn1: AuthenticationFailed", auth[0], StringComparison.Ordinal);
        // Nothing lost: the first line and the summaries together count every drop.
        Assert.Equal(10_000, 1 + auth.Skip(1).Sum(SuppressedCount));
        Assert.Equal(2_000, 1 + unknown.Skip(1).Sum(SuppressedCount));
    }

    [Fact]
    public void Burst_ThenQuiet_SummaryAtNextDueThenFirstDropLoggedAgain()
    {
        var clock = TestTime.NewClock();
        var lines = new Lines();
        var drops = new DropLog(lines, clock);

        for (int i = 0; i < 40; i++)
        {
            drops.Record("mn1", DropReason.Replay, Generation.Initialization);
        }
        Assert.Single(lines.Written);
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromSeconds(1), drops.NextDue);

        drops.Flush();
        Assert.Single(lines.Written); // not due yet
        clock.Advance(TimeSpan.FromSeconds(1));
        drops.Flush();
        Assert.Equal(2, lines.Written.Count);
        Assert.Equal(39, SuppressedCount(lines.Written[1]));
        Assert.Null(drops.NextDue);

        // Quiet for an interval: the next drop is logged as it comes.
        clock.Advance(TimeSpan.FromSeconds(1));
        drops.Record("mn1", DropReason.Replay, Generation.Initialization);
        Assert.Equal(3, lines.Written.Count);
        Assert.StartsWith("dropped a datagram from mn1: Replay", lines.Written[2], StringComparison.Ordinal);
    }

    private static long SuppressedCount(string line)
    {
        Assert.StartsWith("dropped ", line, StringComparison.Ordinal);
        return long.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
