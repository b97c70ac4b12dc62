using System.Diagnostics;

namespace MipKeyAgent.Tools.Bench;

/// <summary>
/// One timed operation: thread CPU time per call (<see cref="NanosecondsPerOp"/>), wall time per
/// call, and heap bytes allocated per call (this thread).
/// </summary>
internal readonly record struct Measurement(string Name, double NanosecondsPerOp, double WallNanosecondsPerOp, double AllocatedBytesPerOp,
    long Operations)
{
    public double OpsPerSecond => 1e9 / NanosecondsPerOp;

    /// <summary>
    /// Times <paramref name="operation"/>: a warm-up, then <paramref name="rounds"/> rounds of
    /// about <paramref name="roundTime"/> each; the fastest round is reported (the least disturbed
    /// by other processes on a shared machine; CPU and wall time separately), allocations are summed over all rounds.
    /// </summary>
    public static Measurement Run(string name, Action operation, TimeSpan roundTime, int rounds = 5)
    {
        ArgumentNullException.ThrowIfNull(operation);
        long batch = Calibrate(operation, roundTime);
        double best = double.MaxValue;
        double bestWall = double.MaxValue;
        long allocated = 0;
        long operations = 0;
        for (int round = 0; round < rounds; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            long cpuStart = ThreadCpuClock.Nanoseconds();
            long start = Stopwatch.GetTimestamp();
            for (long i = 0; i < batch; i++)
            {
                operation();
            }
            long elapsed = Stopwatch.GetTimestamp() - start;
            long cpu = ThreadCpuClock.Nanoseconds() - cpuStart;
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            operations += batch;
            best = Math.Min(best, (double)cpu / batch);
            bestWall = Math.Min(bestWall, elapsed * (1e9 / Stopwatch.Frequency) / batch);
        }
        return new Measurement(name, best, bestWall, (double)allocated / operations, operations);
    }

    // Grows the batch until one batch takes about a tenth of the round time, then scales it.
    private static long Calibrate(Action operation, TimeSpan roundTime)
    {
        long batch = 1;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            for (long i = 0; i < batch; i++)
            {
                operation();
            }
            var elapsed = Stopwatch.GetElapsedTime(start);
            if (elapsed >= roundTime / 10 || batch >= 1L << 40)
            {
                return Math.Max(1, (long)(batch * (roundTime / elapsed)));
            }
            batch *= 2;
        }
    }
}
