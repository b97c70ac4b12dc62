using System.Diagnostics;
using System.Text.RegularExpressions;

namespace MipKeyAgent.Conformance;

/// <summary>
/// Runs the selected cases against a live target: the ordinary ones side by side (each on nodes
/// of its own), then the exclusive ones alone (restarts, floods, timers). Reports each result
/// as it comes (the live progress line).
/// </summary>
internal static class ConformanceRunner
{
    /// <summary>Cases whose id matches <paramref name="include"/> (any, when empty) and none of <paramref name="exclude"/>; shell-style * and ?.</summary>
    public static IReadOnlyList<ConformanceCase> Select(IEnumerable<ConformanceCase> cases, IReadOnlyList<string> include, IReadOnlyList<string> exclude)
    {
        var including = include.Select(Glob).ToList();
        var excluding = exclude.Select(Glob).ToList();
        return [.. cases.Where(c => (including.Count == 0 || including.Exists(r => r.IsMatch(c.Id))) && !excluding.Exists(r => r.IsMatch(c.Id)))];
    }

    private static Regex Glob(string pattern) =>
        new("^" + Regex.Escape(pattern).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    public static async Task<IReadOnlyList<CaseResult>> RunAsync(TargetSettings settings, IReadOnlyList<ConformanceCase> cases,
        Action<CaseResult>? progress, CancellationToken cancellationToken)
    {
        var pool = new NodePool(settings.Nodes);
        using var session = new MobileNodeSession();
        await using var link = new TesterLink(settings.Transport);
        var results = new CaseResult[cases.Count];
        var lockObject = new Lock();
        using var gate = new SemaphoreSlim(Math.Max(1, settings.Parallelism));
        var shared = Enumerable.Range(0, cases.Count).Where(i => !cases[i].Exclusive).Select(async i =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                results[i] = await RunOneAsync(settings, pool, link, cases[i], cancellationToken);
            }
            finally
            {
                gate.Release();
            }
            lock (lockObject)
            {
                progress?.Invoke(results[i]);
            }
        }).ToList();
        await Task.WhenAll(shared);
        for (int i = 0; i < cases.Count; i++)
        {
            if (cases[i].Exclusive)
            {
                results[i] = await RunOneAsync(settings, pool, link, cases[i], cancellationToken, session);
                progress?.Invoke(results[i]);
            }
        }
        return results;
    }

    private static async Task<CaseResult> RunOneAsync(TargetSettings settings, NodePool pool, TesterLink link, ConformanceCase @case,
        CancellationToken cancellationToken, MobileNodeSession? session = null)
    {
        var clock = Stopwatch.StartNew();
        using var context = new CaseContext(settings, pool, link, cancellationToken) { Session = session };
        Verdict verdict;
        string message;
        string? expected = null;
        try
        {
            await @case.Run(context);
            verdict = Verdict.Pass;
            message = "";
        }
        catch (CaseFailedException failed)
        {
            verdict = Verdict.Fail;
            message = failed.Observed;
            expected = failed.Expected;
        }
        catch (CaseInconclusiveException inconclusive)
        {
            verdict = Verdict.Inconclusive;
            message = inconclusive.Message;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            verdict = Verdict.Inconclusive;
            message = "run cancelled";
        }
#pragma warning disable CA1031 // A case that breaks must not stop the run: its error is its verdict.
        catch (Exception error)
#pragma warning restore CA1031
        {
            verdict = Verdict.Inconclusive;
            message = $"the tester failed: {error.GetType().Name}: {error.Message}";
        }
        if (verdict != Verdict.Pass)
        {
            // The target node's state is not known after a case that did not pass.
            session?.Reset();
            context.Note(verdict == Verdict.Fail ? $"FAIL: expected {expected}; observed {message}" : $"INCONCLUSIVE: {message}");
        }
        return new CaseResult
        {
            Case = @case,
            Verdict = verdict,
            Message = message,
            Expected = expected,
            Evidence = context.Evidence,
            SecurityAssociations = context.SecurityAssociations,
            Duration = clock.Elapsed,
        };
    }
}
