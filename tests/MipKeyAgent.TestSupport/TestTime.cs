using Microsoft.Extensions.Time.Testing;

namespace MipKeyAgent.TestSupport;

/// <summary>
/// The tests' manual clock is <see cref="FakeTimeProvider"/> (STYLE.md 5 and 12: time is advanced,
/// never waited for; advancing fires due timers in due-time order and never goes backwards).
/// <see cref="Start"/> is the instant the tests' clocks start at unless a test says otherwise.
/// </summary>
public static class TestTime
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A manual clock at <see cref="Start"/>.</summary>
    public static FakeTimeProvider NewClock() => new(Start);
}
