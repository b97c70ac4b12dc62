using Microsoft.Extensions.Time.Testing;
using MipKeyAgent.Protocol;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Simulation;

/// <summary>What the driver does next: deliver the datagram at the head of the link, or tick one timer.</summary>
public enum DriverEventKind : byte
{
    Arrival,
    Timer,
}

/// <summary>The earliest pending event of an <see cref="EngineDriver"/>: when, what, and which timer (its index in registration order).</summary>
public readonly record struct DriverEvent(DateTimeOffset Time, DriverEventKind Kind, int Timer);

/// <summary>
/// The host loop of an agent in virtual time, for the simulator, the tests, replay and the
/// fuzzer alike: home agent and mobile node engines joined by one <see cref="SimulatedLink"/>
/// (no faults and no delay unless a <see cref="LinkProfile"/> says otherwise), moved by one
/// <see cref="FakeTimeProvider"/>. Engines send into the driver (it is their
/// <see cref="IDatagramSink"/>); a datagram waits on the link until its arrival time and is then
/// handed to the endpoint attached at its destination address, in arrival order (ties keep send
/// order). Timers are whatever has a NextDeadline and a Tick (an engine, usually through a
/// closure so that a restarted engine takes the old one's place). Not thread-safe: the engines
/// are single-threaded.
/// </summary>
public sealed class EngineDriver : IDatagramSink
{
    /// <summary>Where the clock starts unless told otherwise.</summary>
    public static readonly DateTimeOffset DefaultStart = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private const int DestinationOffset = 24;
    private const int NoProgressLimit = 100_000;
    private readonly Dictionary<Ipv6Address, Endpoint> _endpoints = [];
    private readonly Dictionary<Ipv6Address, int> _dropNext = [];
    private readonly List<(Func<DateTimeOffset?> NextDeadline, Action Tick)> _timers = [];
    private DateTimeOffset _lastStepTime;
    private int _stepsAtSameTime;

    /// <param name="clock">The manual clock (default: a new one at <see cref="DefaultStart"/>).</param>
    /// <param name="link">The link and its fault model (default: perfect, no delay, so datagrams arrive in send order at once).</param>
    public EngineDriver(FakeTimeProvider? clock = null, SimulatedLink? link = null)
    {
        Clock = clock ?? new FakeTimeProvider(DefaultStart);
        Link = link ?? new SimulatedLink(0, LinkProfile.Perfect(TimeSpan.Zero));
        _lastStepTime = Clock.GetUtcNow();
    }

    public FakeTimeProvider Clock { get; }

    public SimulatedLink Link { get; }

    public DateTimeOffset Now => Clock.GetUtcNow();

    /// <summary>Every datagram sent through <see cref="Send(ReadOnlySpan{byte})"/>, in order, when <see cref="KeepSent"/> is set (for replay attacks and inspection).</summary>
    public List<byte[]> Sent { get; } = [];

    /// <summary>Whether <see cref="Sent"/> keeps a copy of every datagram (on by default).</summary>
    public bool KeepSent { get; set; } = true;

    public int Delivered { get; private set; }

    /// <summary>Datagrams dropped at delivery by <see cref="DropNext"/> or <see cref="DropWhen"/> (the link's own losses are in its counters).</summary>
    public int Dropped { get; private set; }

    /// <summary>Datagrams that arrived at an address nobody is attached at.</summary>
    public int Unroutable { get; private set; }

    /// <summary>Drops every arriving datagram for which this returns true (null: none).</summary>
    public Func<byte[], bool>? DropWhen { get; set; }

    /// <summary>Datagrams on the link, not yet delivered.</summary>
    public int Pending => Link.InFlight;

    /// <summary>
    /// Attaches (or replaces) the receiver of datagrams addressed to <paramref name="address"/>;
    /// <paramref name="reachedBy"/> is the link direction that leads there (it picks the fault model).
    /// </summary>
    public void Attach(Ipv6Address address, LinkDirection reachedBy, Action<LinkDatagram> deliver) =>
        _endpoints[address] = new Endpoint(reachedBy, deliver);

    /// <summary>Attaches a receiver of the datagram's bytes (see <see cref="Attach(Ipv6Address, LinkDirection, Action{LinkDatagram})"/>).</summary>
    public void Attach(Ipv6Address address, LinkDirection reachedBy, Action<byte[]> deliver) =>
        Attach(address, reachedBy, (LinkDatagram d) => deliver(d.Bytes));

    /// <summary>Attaches (or replaces) a receiver of the datagram's bytes; a replacement keeps the direction, a new address is reached towards the mobile node.</summary>
    public void Attach(Ipv6Address address, Action<byte[]> deliver) =>
        Attach(address, _endpoints.TryGetValue(address, out var old) ? old.ReachedBy : LinkDirection.ToMobileNode, deliver);

    public void Detach(Ipv6Address address) => _endpoints.Remove(address);

    /// <summary>Registers a timer: the driver calls <paramref name="tick"/> when <paramref name="nextDeadline"/> (null: none) comes due.</summary>
    public void AddTimer(Func<DateTimeOffset?> nextDeadline, Action tick) => _timers.Add((nextDeadline, tick));

    /// <summary>Drops the next <paramref name="count"/> datagrams arriving for <paramref name="destination"/>.</summary>
    public void DropNext(Ipv6Address destination, int count = 1) =>
        _dropNext[destination] = _dropNext.GetValueOrDefault(destination) + count;

    /// <summary>Puts a copy of <paramref name="datagram"/> on the link towards its destination address.</summary>
    public void Send(ReadOnlySpan<byte> datagram)
    {
        if (KeepSent)
        {
            Sent.Add(datagram.ToArray());
        }
        _ = Send(datagram, DirectionTo(DestinationOf(datagram)));
    }

    /// <summary>
    /// Puts a copy of <paramref name="datagram"/> on the link in <paramref name="direction"/>, with a
    /// tag and the sender's state lineage (opaque to the driver); returns how many copies will arrive.
    /// </summary>
    public int Send(ReadOnlySpan<byte> datagram, LinkDirection direction, long tag = 0, int senderEpoch = 0) =>
        Link.Send(Now, direction, datagram, tag, senderEpoch);

    /// <summary>Delivers every datagram that has arrived by now, including those sent while delivering; returns how many reached an endpoint.</summary>
    public int Pump()
    {
        int delivered = 0;
        while (Link.TryReceive(Now, out var datagram))
        {
            if (Route(datagram))
            {
                delivered++;
            }
        }
        return delivered;
    }

    /// <summary>Forgets everything on the link (an outage, or the host that held it went away).</summary>
    public void Clear() => Link.Clear();

    /// <summary>The earliest deadline of the registered timers, or null when none is armed.</summary>
    public DateTimeOffset? NextDeadline
    {
        get
        {
            DateTimeOffset? next = null;
            foreach (var (nextDeadline, _) in _timers)
            {
                if (nextDeadline() is { } due && (next is null || due < next))
                {
                    next = due;
                }
            }
            return next;
        }
    }

    /// <summary>The earliest pending event; on a tie an arrival comes first, then timers in registration order.</summary>
    public DriverEvent? PeekNext()
    {
        DriverEvent? best = Link.NextArrival is { } arrival ? new DriverEvent(arrival, DriverEventKind.Arrival, -1) : null;
        for (int i = 0; i < _timers.Count; i++)
        {
            if (_timers[i].NextDeadline() is { } due && (best is null || due < best.Value.Time))
            {
                best = new DriverEvent(due, DriverEventKind.Timer, i);
            }
        }
        return best;
    }

    /// <summary>
    /// Runs one event that <see cref="PeekNext"/> returned, after moving the clock to its time (see <see cref="MoveTo"/>):
    /// the arriving datagram is routed (returned), or the timer ticked (null returned).
    /// </summary>
    public LinkDatagram? Step(DriverEvent next)
    {
        MoveToNextEvent(next.Time);
        if (next.Kind == DriverEventKind.Timer)
        {
            _timers[next.Timer].Tick();
            return null;
        }
        if (!Link.TryReceive(Now, out var datagram))
        {
            throw new InvalidOperationException("no datagram has arrived");
        }
        _ = Route(datagram);
        return datagram;
    }

    /// <summary>Ticks every registered timer, in registration order (what a host loop does when a deadline comes due).</summary>
    public void TickAll()
    {
        foreach (var (_, tick) in _timers)
        {
            tick();
        }
    }

    /// <summary>Runs the host loop for <paramref name="duration"/> of virtual time (see <see cref="RunUntil"/>).</summary>
    public void Run(TimeSpan duration) => RunUntil(Now + duration);

    /// <summary>
    /// The host loop: deliver what has arrived, move the clock to the next arrival or deadline,
    /// tick every timer when a deadline is due; until nothing is pending at or before
    /// <paramref name="until"/>. The clock is then set there.
    /// </summary>
    public void RunUntil(DateTimeOffset until)
    {
        while (true)
        {
            Pump();
            var deadline = NextDeadline;
            var next = deadline;
            if (Link.NextArrival is { } arrival && (next is null || arrival < next))
            {
                next = arrival;
            }
            if (next is null || next > until)
            {
                break;
            }
            MoveToNextEvent(next.Value);
            if (deadline <= Now)
            {
                TickAll();
            }
        }
        MoveTo(until);
    }

    /// <summary>Moves the clock to <paramref name="instant"/>; staying put is allowed, going back is not.</summary>
    public void AdvanceTo(DateTimeOffset instant)
    {
        if (instant < Now)
        {
            throw new ArgumentOutOfRangeException(nameof(instant), instant, $"virtual time never goes backwards (now {Now:O})");
        }
        MoveTo(instant);
    }

    /// <summary>Moves the clock to <paramref name="due"/>, or stays where it is when that time has passed (an overdue event runs now).</summary>
    public void MoveTo(DateTimeOffset due)
    {
        if (due > Now)
        {
            Clock.SetUtcNow(due);
        }
    }

    /// <summary>
    /// Moves the clock for the next event of a loop. A loop that never advances time would spin
    /// for ever: a deadline that stays at or before now after its Tick is a bug worth a loud
    /// failure, not a hang.
    /// </summary>
    private void MoveToNextEvent(DateTimeOffset due)
    {
        MoveTo(due);
        if (Now != _lastStepTime)
        {
            _lastStepTime = Now;
            _stepsAtSameTime = 0;
        }
        else if (++_stepsAtSameTime > NoProgressLimit)
        {
            throw new InvalidOperationException($"no progress: {NoProgressLimit} steps at {Now:O} (a NextDeadline does not move on)");
        }
    }

    /// <summary>The destination address of an IPv6 datagram (the unspecified address when it is too short).</summary>
    public static Ipv6Address DestinationOf(ReadOnlySpan<byte> datagram) =>
        datagram.Length >= DestinationOffset + Ipv6Address.Length ? Ipv6Address.Read(datagram.Slice(DestinationOffset, Ipv6Address.Length)) : default;

    private LinkDirection DirectionTo(Ipv6Address destination) =>
        _endpoints.TryGetValue(destination, out var endpoint) ? endpoint.ReachedBy : LinkDirection.ToMobileNode;

    private bool Route(LinkDatagram datagram)
    {
        var destination = DestinationOf(datagram.Bytes);
        if (_dropNext.TryGetValue(destination, out int left) && left > 0)
        {
            _dropNext[destination] = left - 1;
            Dropped++;
            return false;
        }
        if (DropWhen?.Invoke(datagram.Bytes) == true)
        {
            Dropped++;
            return false;
        }
        if (!_endpoints.TryGetValue(destination, out var endpoint))
        {
            Unroutable++;
            return false;
        }
        Delivered++;
        endpoint.Deliver(datagram);
        return true;
    }

    private sealed record Endpoint(LinkDirection ReachedBy, Action<LinkDatagram> Deliver);
}
