namespace MipKeyAgent.Esp.Tests;

public sealed class ReplayWindowTests
{
    [Fact]
    public void NewWindow_Zero_NotAcceptableButOneIs()
    {
        var window = new ReplayWindow();
        Assert.Equal(64, window.Size);
        Assert.False(window.IsAcceptable(0));
        Assert.True(window.IsAcceptable(1));
        Assert.Equal(0u, window.RightEdge);
    }

    [Fact]
    public void Accept_SameNumberTwice_SecondNotAcceptable()
    {
        var window = new ReplayWindow();
        window.Accept(5);
        Assert.False(window.IsAcceptable(5));
        Assert.True(window.IsAcceptable(4));
        Assert.True(window.IsAcceptable(6));
        Assert.Equal(5u, window.RightEdge);
    }

    [Fact]
    public void Accept_EdgeAt100_Size64LeftEdgeIs37()
    {
        var window = new ReplayWindow(64);
        window.Accept(100);
        Assert.False(window.IsAcceptable(36));
        Assert.True(window.IsAcceptable(37));
        window.Accept(37);
        Assert.False(window.IsAcceptable(37));
        Assert.Equal(2, window.CountReceived());
    }

    [Fact]
    public void Accept_JumpBeyondWindow_ForgetsOldBits()
    {
        var window = new ReplayWindow(96);
        for (uint i = 1; i <= 10; i++)
        {
            window.Accept(i);
        }

        window.Accept(10_000);
        Assert.Equal(1, window.CountReceived());
        Assert.True(window.IsAcceptable(9_999));
        Assert.True(window.IsAcceptable(10_000 - 95));
        Assert.False(window.IsAcceptable(10_000 - 96));
    }

    [Fact]
    public void Accept_ShiftAcrossWordBoundary_KeepsBits()
    {
        var window = new ReplayWindow(1024);
        window.Accept(1);
        window.Accept(3);
        window.Accept(3 + 70);   // shift by 70: crosses one 64-bit word
        window.Accept(73 + 500); // and several more
        Assert.False(window.IsAcceptable(1));
        Assert.True(window.IsAcceptable(2));
        Assert.False(window.IsAcceptable(3));
        Assert.False(window.IsAcceptable(73));
        Assert.True(window.IsAcceptable(74));
        Assert.Equal(4, window.CountReceived());
    }

    [Fact]
    public void Restore_RightEdge_OnlyHigherNumbersAccepted()
    {
        var window = new ReplayWindow(64, rightEdge: 1000);
        Assert.Equal(1000u, window.RightEdge);
        Assert.False(window.IsAcceptable(1000));
        Assert.False(window.IsAcceptable(990));
        Assert.False(window.IsAcceptable(1));
        Assert.True(window.IsAcceptable(1001));
        window.Accept(1010);
        Assert.True(window.IsAcceptable(1005));
        Assert.False(window.IsAcceptable(1000));
    }

    [Fact]
    public void Accept_MaximumSequence_IsRightEdge()
    {
        var window = new ReplayWindow(32);
        window.Accept(uint.MaxValue);
        Assert.Equal(uint.MaxValue, window.RightEdge);
        Assert.False(window.IsAcceptable(uint.MaxValue));
        Assert.True(window.IsAcceptable(uint.MaxValue - 31));
        Assert.False(window.IsAcceptable(uint.MaxValue - 32));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(48)]
    [InlineData(1056)]
    [InlineData(2048)]
    public void Constructor_BadSize_Throws(int size)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayWindow(size));
    }

    [Fact]
    public void Accept_Zero_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayWindow().Accept(0));
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(96)]
    [InlineData(1024)]
    public void RandomTraffic_ComparedWithSetModel_SameDecisions(int size)
    {
        var random = new Random(4303 + size);
        var window = new ReplayWindow(size);
        var seen = new HashSet<uint>();
        uint edge = 0;
        uint next = 1;
        for (int i = 0; i < 20_000; i++)
        {
            // Mostly forward, with reordering, duplicates and occasional jumps.
            uint sequence = random.Next(10) switch
            {
                0 => next + (uint)random.Next(2 * size),
                1 or 2 => edge - (uint)Math.Min(edge, random.Next(size + 10)),
                _ => next++,
            };
            bool expected = sequence != 0 && !seen.Contains(sequence) && (sequence > edge || edge - sequence < size);
            Assert.Equal(expected, window.IsAcceptable(sequence));
            if (expected && random.Next(8) != 0)
            {
                window.Accept(sequence);
                seen.Add(sequence);
                edge = Math.Max(edge, sequence);
                next = Math.Max(next, sequence + 1);
            }
        }

        Assert.Equal(edge, window.RightEdge);
    }

    [Fact]
    public void Restore_AfterTraffic_EverythingAtOrBelowEdgeSeenAndEdgeNeverMovesBack()
    {
        var window = new ReplayWindow();
        window.Accept(3);

        window.Restore(100);

        Assert.Equal(100u, window.RightEdge);
        Assert.False(window.IsAcceptable(100));
        Assert.False(window.IsAcceptable(60));
        Assert.True(window.IsAcceptable(101));
        window.Restore(50);
        Assert.Equal(100u, window.RightEdge);
    }
}
