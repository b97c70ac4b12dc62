using MipKeyAgent.Esp;
using MipKeyAgent.Wire;

namespace MipKeyAgent.Conformance;

/// <summary>
/// The cases a tester playing mobile nodes runs against a live home agent. Each is a function of
/// the target's answers only; docs/conformance.md lists them with their clauses.
/// </summary>
internal static partial class HomeAgentCases
{
    public static IReadOnlyList<ConformanceCase> All { get; } =
    [
        .. InitCases(),
        .. TableCases(),
        .. UpdateCases(),
        .. SequenceCases(),
        .. EspCases(),
        .. MessageCases(),
        .. OptionCases(),
        .. FloodCases(),
        .. DataCases(),
        .. TimerCases(),
        .. ImplicitCases(),
    ];

    private static ConformanceCase Case(string id, string title, string clause, string[] steps, Func<CaseContext, Task> run,
        bool required = true, bool exclusive = false) =>
        new(id, TargetRole.HomeAgent, title, clause, required, steps, run, exclusive);

    /// <summary>An explicit-mode case (KEY-*-REQ options); a target in implicit mode makes it inconclusive.</summary>
    private static Func<CaseContext, Task> Explicit(Func<CaseContext, TesterNode, Task> run) => async context =>
    {
        if (context.Settings.Implicit)
        {
            context.Inconclusive("the target runs in implicit mode (this case checks explicit requests)");
        }
        await run(context, context.NewNode());
    };

    private static void ExpectUnder(CaseContext context, Reply reply, HeldGeneration expected, string why) =>
        context.Check(ReferenceEquals(reply.Under, expected), $"sealed under {expected.Name} ({why}; SPI {expected.SpiHaToMn})",
            reply.ToString());

    private static void ExpectPlain(CaseContext context, Reply reply, string why)
    {
        context.Check(reply.Status == BindingAckStatus.Accepted, $"BA status 0 ({why})", reply.ToString());
        context.Check(reply.KeyDistribution is null, $"a BA without KEY-DIST ({why})", reply.ToString());
    }

    private static void ExpectDistribution(CaseContext context, Reply reply, uint generation, string why) =>
        context.Check(reply.KeyDistribution?.Generation == generation, $"KEY-DIST(g{generation}) ({why})", reply.ToString());

    private static IEnumerable<ConformanceCase> InitCases()
    {
        yield return Case("HA-INIT-01", "KEY-INIT-REQ under IK is answered with KEY-DIST of a new generation, sealed under IK",
            "PROTOCOL.md 5.1, 4; RFC 6275 11.7.1",
            ["BU under IK with KEY-INIT-REQ(fresh epoch)", "expect BA status 0 with KEY-DIST(g >= 1), wrapped under the KEK, sealed under IK"],
            Explicit(async (context, node) =>
            {
                var (reply, generation) = await node.InitializeAsync();
                context.Check(generation.Generation >= 1, "a dynamic generation (g >= 1)", reply.ToString());
                ExpectUnder(context, reply, node.Ik, "after an init the HA holds {K, IK} and transmits with IK");
            }));
        yield return Case("HA-INIT-02", "A retransmitted init (same epoch, K unconfirmed) gets the same generation, secret and SPIs",
            "PROTOCOL.md 5.1 (retransmitted init), 6",
            ["init", "BU under IK with KEY-INIT-REQ of the same epoch, new BU and ESP sequence numbers", "expect KEY-DIST of the same generation, same secret and SPIs"],
            Explicit(async (context, node) =>
            {
                var (_, first) = await node.InitializeAsync();
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(node.Epoch), $"KEY-INIT-REQ(epoch {node.Epoch}) retransmitted");
                var again = await node.ExpectAckAsync("KEY-DIST of the same generation");
                ExpectDistribution(context, again, first.Generation, "a retransmitted init is answered with the same K");
                node.Install(again);
            }));
        yield return Case("HA-INIT-03", "A new epoch while K is unconfirmed takes a new generation",
            "PROTOCOL.md 8.5, 5.1",
            ["init (K1 unconfirmed)", "BU under IK with KEY-INIT-REQ(epoch + 1)", "expect KEY-DIST of a generation newer than K1, with other SPIs"],
            Explicit(async (context, node) =>
            {
                var (_, first) = await node.InitializeAsync();
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(), $"KEY-INIT-REQ(epoch {node.Epoch}): the node restarted");
                var reply = await node.ExpectAckAsync("KEY-DIST of a new generation");
                context.Check(reply.KeyDistribution is { } d && d.Generation > first.Generation && d.SpiMnToHa != first.SpiMnToHa,
                    $"KEY-DIST(g > {first.Generation}) with new SPIs", reply.ToString());
                node.Install(reply);
            }));
        yield return Case("HA-INIT-04", "A stale (lower) epoch after confirmation is dropped silently and changes nothing",
            "PROTOCOL.md 5.1 (never roll keys back)",
            ["init and confirm K", "BU under IK with KEY-INIT-REQ(epoch - 1)", "expect silence", "plain BU under K: expect a plain BA under IK"],
            Explicit(async (context, node) =>
            {
                var k = await node.InitializeAndConfirmAsync();
                ulong epoch = node.Epoch;
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(epoch - 1), $"KEY-INIT-REQ(epoch {epoch - 1}): stale");
                await node.ExpectSilenceAsync("a stale epoch is dropped silently");
                await node.SendBindingUpdateAsync(k, null, "plain BU: the state must be unchanged");
                var reply = await node.ExpectAckAsync("a plain BA");
                ExpectPlain(context, reply, "rule 4");
                ExpectUnder(context, reply, node.Ik, "HA still holds {K, IK}");
            }));
        yield return Case("HA-INIT-05", "The same epoch after its K was confirmed is dropped silently",
            "PROTOCOL.md 5.1",
            ["init and confirm K", "BU under IK with KEY-INIT-REQ of the same epoch", "expect silence"],
            Explicit(async (context, node) =>
            {
                await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(node.Epoch), $"KEY-INIT-REQ(epoch {node.Epoch}) replayed after confirmation");
                await node.ExpectSilenceAsync("the epoch is not newer and its K is confirmed");
            }));
        yield return Case("HA-INIT-06", "A lower epoch while K is unconfirmed is dropped silently",
            "PROTOCOL.md 5.1",
            ["init (K unconfirmed)", "BU under IK with KEY-INIT-REQ(epoch - 1)", "expect silence"],
            Explicit(async (context, node) =>
            {
                await node.InitializeAsync();
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(node.Epoch - 1), $"KEY-INIT-REQ(epoch {node.Epoch}): lower than the stored one");
                await node.ExpectSilenceAsync("a lower epoch must never roll keys back");
            }));
        yield return Case("HA-INIT-07", "A new init after two generations drops them and numbers the new one after the highest",
            "PROTOCOL.md 5.1 (older dynamic generations are dropped), 3 (numbering)",
            ["init, confirm g1, update to g2, confirm g2", "BU under IK with KEY-INIT-REQ(epoch + 1)", "expect KEY-DIST(g > g2) under IK",
             "BU under g2 and under g1: expect silence"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.ConfirmAsync(g2);
                var (reply, g3) = await node.InitializeAsync();
                context.Check(g3.Generation > g2.Generation, $"a generation numbered after g{g2.Generation}", reply.ToString());
                ExpectUnder(context, reply, node.Ik, "after an init the HA transmits with IK");
                await node.SendBindingUpdateAsync(g2, null, "plain BU under a dropped generation");
                await node.ExpectSilenceAsync("the init dropped the older dynamic generations");
                await node.SendBindingUpdateAsync(g1, null, "plain BU under a dropped generation");
                await node.ExpectSilenceAsync("the init dropped the older dynamic generations");
            }));
    }

    private static IEnumerable<ConformanceCase> TableCases()
    {
        yield return Case("HA-TX-01", "After confirming g1 the HA still transmits with IK (N-1)",
            "PROTOCOL.md 4 (HA transmits with N-1)",
            ["init, plain BU under g1", "expect a plain BA sealed under IK"],
            Explicit(async (context, node) =>
            {
                var (_, g1) = await node.InitializeAsync();
                var reply = await node.ConfirmAsync(g1);
                ExpectUnder(context, reply, node.Ik, "HA holds {g1, IK}: N-1 is IK");
            }));
        yield return Case("HA-TX-02", "KEY-DIST(g2) is sealed under g1, and so are the BAs after g2 is confirmed",
            "PROTOCOL.md 4, 5.2",
            ["init, confirm g1", "KEY-UPDATE-REQ under g1: expect KEY-DIST(g2) under g1", "plain BU under g2: expect a plain BA under g1"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (dist, g2) = await node.UpdateAsync(g1);
                ExpectUnder(context, dist, g1, "HA holds {g2, g1}: N-1 is g1");
                var reply = await node.ConfirmAsync(g2);
                ExpectUnder(context, reply, g1, "HA holds {g2, g1}: N-1 is g1");
            }));
        yield return Case("HA-TX-03", "Each rekey moves the HA's transmit key to the generation before the newest",
            "PROTOCOL.md 4",
            ["init, confirm g1, update to g2, confirm, update to g3, confirm", "expect BAs under IK, g1, g2 in turn"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.ConfirmAsync(g2);
                var (dist, g3) = await node.UpdateAsync(g2);
                ExpectUnder(context, dist, g2, "HA holds {g3, g2}");
                var reply = await node.ConfirmAsync(g3);
                ExpectUnder(context, reply, g2, "HA holds {g3, g2}");
            }));
        yield return Case("HA-RX-01", "The HA receives under N-1 as well as N",
            "PROTOCOL.md 4 (HA receives with N and N-1)",
            ["init, confirm g1, update to g2, confirm g2", "plain BU under g1", "expect a plain BA (under g1)"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.ConfirmAsync(g2);
                await node.SendBindingUpdateAsync(g1, null, "plain BU under N-1");
                var reply = await node.ExpectAckAsync("a BA: N-1 is still received");
                ExpectPlain(context, reply, "rule 4");
                ExpectUnder(context, reply, g1, "transmit key N-1");
            }));
        yield return Case("HA-RX-02", "With two dynamic generations held, a BU under IK without KEY-INIT-REQ is dropped",
            "PROTOCOL.md 4 (IK is neither N nor N-1), 3",
            ["init, confirm g1, update to g2, confirm g2", "plain BU under IK", "expect silence"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.ConfirmAsync(g2);
                await node.SendBindingUpdateAsync(node.Ik, null, "plain BU under IK (neither N nor N-1)");
                await node.ExpectSilenceAsync("the HA receives with N and N-1 only");
            }));
        yield return Case("HA-RX-03", "A generation older than N-1 is no longer received",
            "PROTOCOL.md 4 (at most IK plus two dynamic generations)",
            ["init, confirm g1, update to g2, confirm, update to g3, confirm", "plain BU under g1", "expect silence"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.ConfirmAsync(g2);
                var (_, g3) = await node.UpdateAsync(g2);
                await node.ConfirmAsync(g3);
                await node.SendBindingUpdateAsync(g1, null, "plain BU under g1, two generations back");
                await node.ExpectSilenceAsync("g1 was dropped when g3 was taken");
            }));
    }

    private static IEnumerable<ConformanceCase> UpdateCases()
    {
        yield return Case("HA-UPD-01", "KEY-UPDATE-REQ under the confirmed newest generation gets KEY-DIST(N+1) with new SPIs",
            "PROTOCOL.md 5.2, 3 (numbering, SPIs)",
            ["init, confirm g1", "BU under g1 with KEY-UPDATE-REQ(1)", "expect KEY-DIST(g1 + 1) with SPIs other than g1's and IK's"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (reply, g2) = await node.UpdateAsync(g1);
                ExpectDistribution(context, reply, g1.Generation + 1, "numbered after the highest generation issued");
                context.Check(g2.SpiMnToHa != g1.SpiMnToHa && g2.SpiHaToMn != g1.SpiHaToMn && g2.SpiMnToHa != node.Ik.SpiMnToHa
                    && g2.SpiHaToMn != node.Ik.SpiHaToMn, "SPIs unique among the node's live SAs", reply.ToString());
            }));
        yield return Case("HA-UPD-02", "A plain BU under the confirmed newest generation gets a plain BA",
            "PROTOCOL.md 5.4",
            ["init, confirm g1", "plain BU under g1", "expect a plain BA, no KEY-DIST"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(g1, null, "plain BU");
                ExpectPlain(context, await node.ExpectAckAsync("a plain BA"), "rule 4: no request, no rekey");
            }));
        yield return Case("HA-RESEND-01", "KEY-RESEND-REQ under N-1 while N is unconfirmed resends KEY-DIST(N): same secret and SPIs",
            "PROTOCOL.md 5.3, 6",
            ["init, confirm g1, KEY-UPDATE-REQ: KEY-DIST(g2) (taken as lost)", "BU under g1 with KEY-RESEND-REQ(1)",
             "expect KEY-DIST(g2) again, same secret and SPIs, under g1"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.SendBindingUpdateAsync(g1, node.ResendRequest(g1.Generation), $"KEY-RESEND-REQ({g1.Generation}): KEY-DIST(g{g2.Generation}) was lost");
                var reply = await node.ExpectAckAsync("KEY-DIST(N) again");
                ExpectDistribution(context, reply, g2.Generation, "rule 3: resend, never a new one");
                node.Install(reply);
                ExpectUnder(context, reply, g1, "HA holds {g2, g1}");
            }));
        yield return Case("HA-RESEND-02", "A plain BU under N-1 while N is unconfirmed also resends KEY-DIST(N)",
            "PROTOCOL.md 5.3 (with or without KEY-RESEND-REQ)",
            ["init, confirm g1, update (g2 unconfirmed)", "plain BU under g1", "expect KEY-DIST(g2) again, same secret and SPIs"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.SendBindingUpdateAsync(g1, null, "plain BU under N-1");
                var reply = await node.ExpectAckAsync("KEY-DIST(N) again");
                ExpectDistribution(context, reply, g2.Generation, "rule 3");
                node.Install(reply);
            }));
        yield return Case("HA-RESEND-03", "KEY-RESEND-REQ naming the confirmed newest generation is answered as an update",
            "PROTOCOL.md 8.6",
            ["init, confirm g1", "BU under g1 with KEY-RESEND-REQ(1)", "expect KEY-DIST(g2)"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(g1, node.ResendRequest(g1.Generation), $"KEY-RESEND-REQ({g1.Generation}): the update BU was lost");
                var reply = await node.ExpectAckAsync("KEY-DIST(N+1)");
                context.Check(reply.KeyDistribution is { } d && d.Generation > g1.Generation, $"KEY-DIST(g > {g1.Generation})", reply.ToString());
                node.Install(reply);
            }));
        yield return Case("HA-INV-01", "No N+1 before N is confirmed: KEY-UPDATE-REQ under N-1 gets N again",
            "PROTOCOL.md 5.5, 5.3",
            ["init, confirm g1, update (g2 unconfirmed)", "BU under g1 with KEY-UPDATE-REQ(1)", "expect KEY-DIST(g2), never g3"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                await node.SendBindingUpdateAsync(g1, node.UpdateRequest(g1.Generation), "KEY-UPDATE-REQ under N-1 while N is unconfirmed");
                var reply = await node.ExpectAckAsync("KEY-DIST(N) again");
                ExpectDistribution(context, reply, g2.Generation, "the invariant: never N+1 before N is confirmed");
                node.Install(reply);
            }));
        yield return Case("HA-INV-02", "Repeated requests under N-1 never move the HA past an unconfirmed N",
            "PROTOCOL.md 5.5",
            ["init, confirm g1, update (g2 unconfirmed)", "three BUs under g1 (update, resend, plain)", "expect KEY-DIST(g2) each time, same secret"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var (_, g2) = await node.UpdateAsync(g1);
                foreach (var options in (BindingUpdateOptions?[])[node.UpdateRequest(g1.Generation), node.ResendRequest(g1.Generation), null])
                {
                    await node.SendBindingUpdateAsync(g1, options, "BU under N-1 while N is unconfirmed");
                    var reply = await node.ExpectAckAsync("KEY-DIST(N) again");
                    ExpectDistribution(context, reply, g2.Generation, "the invariant");
                    node.Install(reply);
                }
            }));
        yield return Case("HA-DEREG-01", "A BU with lifetime 0 is acknowledged with lifetime 0",
            "RFC 6275 10.3.2, 11.7.1",
            ["init, confirm g1", "BU under g1 with lifetime 0", "expect BA status 0, lifetime 0"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(g1, null, "deregistration", lifetimeUnits: 0);
                var reply = await node.ExpectAckAsync("a BA to the deregistration");
                context.Check(reply.Status == BindingAckStatus.Accepted && reply.LifetimeUnits == 0, "BA status 0 lifetime 0", reply.ToString());
            }));
    }

    private static IEnumerable<ConformanceCase> SequenceCases()
    {
        yield return Case("HA-SEQ-01", "A BU repeating the last accepted sequence number gets status 135 with that number",
            "PROTOCOL.md 2; RFC 6275 9.5.1",
            ["init, confirm g1 (BU sequence s)", "plain BU under g1 with sequence s (new ESP counter)", "expect BA status 135 naming s"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                ushort last = node.Sequence;
                await node.SendBindingUpdateAsync(g1, null, "sequence number not newer", sequence: last);
                var reply = await node.ExpectAckAsync("BA status 135");
                context.Check(reply.Status == BindingAckStatus.SequenceNumberOutOfWindow && reply.Sequence == last,
                    $"status 135 with the last accepted sequence number {last}", reply.ToString());
            }));
        yield return Case("HA-SEQ-02", "An older BU sequence number gets status 135 with the last accepted number",
            "PROTOCOL.md 2; RFC 6275 9.5.1 (modulo 2^16)",
            ["init, confirm g1 (BU sequence s)", "plain BU under g1 with sequence s - 100", "expect BA status 135 naming s"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                ushort last = node.Sequence;
                await node.SendBindingUpdateAsync(g1, null, "older sequence number", sequence: (ushort)(last - 100));
                var reply = await node.ExpectAckAsync("BA status 135");
                context.Check(reply.Status == BindingAckStatus.SequenceNumberOutOfWindow && reply.Sequence == last,
                    $"status 135 with the last accepted sequence number {last}", reply.ToString());
            }));
        yield return Case("HA-SEQ-03", "Sequence numbers compare modulo 2^16: jumps of up to 2^15 - 1 and the wrap are accepted",
            "PROTOCOL.md 2; RFC 6275 9.5.1",
            ["init, confirm g1", "plain BUs with sequence s + 0x7000, s + 0xE000, s + 0x10000 + 0x1000 (wrapped)", "expect a BA status 0 echoing each"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                foreach (int step in (int[])[0x7000, 0x7000, 0x3000])
                {
                    ushort next = (ushort)(node.Sequence + step);
                    await node.SendBindingUpdateAsync(g1, null, $"sequence number {step} ahead (modulo 2^16)", sequence: next);
                    var reply = await node.ExpectAckAsync("BA status 0");
                    context.Check(reply.Status == BindingAckStatus.Accepted && reply.Sequence == next, $"status 0 echoing {next}", reply.ToString());
                }
            }));
        yield return Case("HA-BA-01", "The BA echoes the BU's sequence number and grants no more lifetime than asked",
            "RFC 6275 9.5.1, 10.3.1, 6.1.8",
            ["init, confirm g1", "plain BU with lifetime 40 s", "expect BA status 0, the BU's sequence number, lifetime <= 40 s"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(g1, null, "lifetime 40 s", lifetimeUnits: 10);
                var reply = await node.ExpectAckAsync("a BA");
                context.Check(reply.Sequence == node.Sequence && reply.LifetimeUnits <= 10,
                    $"sequence {node.Sequence}, lifetime <= 40 s", reply.ToString());
            }));
    }

    private static IEnumerable<ConformanceCase> EspCases()
    {
        yield return Case("HA-ESP-01", "A replayed BU (same ESP datagram) is dropped, never answered",
            "PROTOCOL.md 2; RFC 4303 3.4.3",
            ["init, confirm g1", "plain BU under g1, answered", "send the same datagram again", "expect silence"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                var bu = await node.SendBindingUpdateAsync(g1, null, "plain BU");
                await node.ExpectAckAsync("a BA");
                await node.SendAsync(bu, "the same datagram again (replay)");
                await node.ExpectSilenceAsync("a replay is dropped and counted, never answered");
            }));
        yield return Case("HA-ESP-02", "A BU whose ICV fails is dropped, never answered, and changes nothing",
            "PROTOCOL.md 2; RFC 4303 3.4.4",
            ["init, confirm g1", "BU under g1 with KEY-UPDATE-REQ and its last octet flipped", "expect silence",
             "plain BU under g1: expect a plain BA"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(g1, node.UpdateRequest(g1.Generation), "KEY-UPDATE-REQ with a corrupted ICV",
                    tamper: d => d[^1] ^= 0x5a);
                await node.ExpectSilenceAsync("an ICV failure is dropped");
                await node.SendBindingUpdateAsync(g1, null, "plain BU");
                ExpectPlain(context, await node.ExpectAckAsync("a plain BA"), "the forged update changed nothing");
            }));
        yield return Case("HA-ESP-03", "A BU under an unknown SPI is dropped, never answered",
            "PROTOCOL.md 2; RFC 4303 3.4.2",
            ["BU with KEY-INIT-REQ sealed under an SPI the target never issued (IK's key)", "expect silence"],
            Explicit(async (context, node) =>
            {
                using var stranger = HeldGeneration.Create(0, node.Provisioning.InitializationKey, 0x7FFF_0000u + (uint)Random.Shared.Next(0xFFFF),
                    node.Ik.SpiHaToMn, node.Provisioning.Suite);
                await node.SendBindingUpdateAsync(stranger, node.InitRequest(), "KEY-INIT-REQ under an unknown SPI");
                await node.ExpectSilenceAsync("unknown SPI: dropped and counted");
            }));
        yield return Case("HA-ESP-04", "An ESP counter starting far above 1 is accepted",
            "PROTOCOL.md 8.1 (a counter may start above 1)",
            ["init with the IK's counter starting at 64 x seconds since 2026", "expect KEY-DIST"],
            Explicit(async (context, node) =>
            {
                context.Note($"IK counter starts after {node.Ik.ControlOut.LastSequenceSent}");
                context.Check(node.Ik.ControlOut.LastSequenceSent > 1000, "a counter far above 1", node.Ik.ControlOut.LastSequenceSent.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await node.InitializeAsync();
            }));
        yield return Case("HA-ESP-05", "The anti-replay window holds at least 64: a datagram 63 counters behind the right edge is accepted",
            "PROTOCOL.md 2 (window at least 64); RFC 4303 3.4.3",
            ["init, confirm g1", "seal BU A (ESP counter c), then 62 unsent, then BU B (c + 63)", "send B, then A (newer BU sequence)", "expect a BA to each"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                ushort start = node.Sequence;
                var (a, aText) = node.BuildBindingUpdate(g1, null, "BU sealed first, sent last", sequence: (ushort)(start + 10));
                for (int i = 0; i < 62; i++)
                {
                    node.BuildBindingUpdate(g1, null, "never sent", sequence: (ushort)(start + 1));
                }
                var (b, bText) = node.BuildBindingUpdate(g1, null, "BU sealed last, sent first", sequence: (ushort)(start + 1));
                await node.SendAsync(b, bText);
                await node.ExpectAckAsync("a BA");
                await node.SendAsync(a, aText);
                var reply = await node.ExpectAckAsync("a BA: the counter is inside the window");
                context.Check(reply.Sequence == (ushort)(start + 10), $"a BA echoing {(ushort)(start + 10)}", reply.ToString());
            }));
        yield return Case("HA-ESP-06", "The HA's counters under one key only grow (a (key, counter) pair is never reused)",
            "PROTOCOL.md 8.1, 2; RFC 4303 3.3.3",
            ["init, confirm g1", "four plain BUs under g1", "expect BAs under IK with strictly increasing ESP counters"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                uint last = 0;
                for (int i = 0; i < 4; i++)
                {
                    await node.SendBindingUpdateAsync(g1, null, "plain BU");
                    var reply = await node.ExpectAckAsync("a BA");
                    context.Check(reply.EspSequence > last, $"an ESP counter above {last}", reply.ToString());
                    last = reply.EspSequence;
                }
            }));
    }

    private static IEnumerable<ConformanceCase> MessageCases()
    {
        yield return Case("HA-MH-01", "The BA's Mobility Header checksum uses the home address as destination",
            "PROTOCOL.md 2; RFC 6275 6.1.1",
            ["init", "check the BA's MH checksum over the pseudo-header home agent -> home address, payload proto 59, length a multiple of 8"],
            Explicit(async (context, node) => await node.InitializeAsync()));
        yield return Case("HA-MH-02", "KEY-DIST is a vendor-specific option at 4n+2, the Mobility Header padded to 8n",
            "PROTOCOL.md 1; RFC 5094 3; RFC 6275 6.2",
            ["init, confirm, update", "check every option's alignment and the header length of each BA"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.UpdateAsync(g1);
            }));
        yield return Case("HA-MH-03", "A BU with a wrong Mobility Header checksum is dropped",
            "RFC 6275 9.2",
            ["BU under IK with KEY-INIT-REQ whose MH checksum is off by one", "expect silence"],
            Explicit(async (context, node) =>
            {
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(), "KEY-INIT-REQ, MH checksum corrupted", mangleHeader: mh => mh[4] ^= 0x01);
                await node.ExpectSilenceAsync("a bad MH checksum is discarded");
            }));
        yield return Case("HA-MH-04", "The BA goes to the care-of address with a type 2 routing header naming the home address",
            "PROTOCOL.md 2; RFC 6275 6.4, 9.5.4",
            ["init", "check IPv6 source (HA), destination (care-of address), RH2 home address"],
            Explicit(async (context, node) => await node.InitializeAsync()));
        yield return Case("HA-KD-01", "KEY-DIST carries the provisioned suite and the secret wrapped under the node's KEK",
            "PROTOCOL.md 1, 3 (KEK, AES-KWP)",
            ["init", "unwrap KEY-DIST under HKDF(IK, \"kek\" || home address)", "confirm under the unwrapped secret's SAs"],
            Explicit(async (context, node) =>
            {
                var (reply, generation) = await node.InitializeAsync();
                context.Check(reply.KeyDistribution!.Secret is { Length: 32 }, "a 32-octet secret", reply.ToString());
                await node.ConfirmAsync(generation);
            }));
        yield return Case("HA-KD-02", "A KEY-DIST in the key-reference form names a 16-octet key_ID and a KME identifier",
            "PROTOCOL.md 1 (flag 0x01)",
            ["init", "if KEY-DIST has flag 0x01: check key_ID and identifier; otherwise inconclusive"],
            Explicit(async (context, node) =>
            {
                await node.SendBindingUpdateAsync(node.Ik, node.InitRequest(), $"KEY-INIT-REQ(epoch {node.Epoch})");
                var reply = await node.ExpectAckAsync("a BA with KEY-DIST");
                if (reply.KeyDistribution is not { IsKeyReference: true } dist)
                {
                    context.Inconclusive("the target distributes wrapped keys, not references");
                    return;
                }
                context.Check(dist.KeyId != Guid.Empty && !string.IsNullOrEmpty(dist.KmeIdentifier), "a key_ID and a KME identifier", dist.ToString());
            }), required: false);
        yield return Case("HA-KS-01", "A BA carries at most one key option, and KEY-STATUS codes are defined ones",
            "PROTOCOL.md 1 (KEY-STATUS codes 0-4)",
            ["init, confirm, update", "every BA: not both KEY-DIST and KEY-STATUS; a KEY-STATUS code in 0..4 with Retry-After for code 1"],
            Explicit(async (context, node) =>
            {
                var g1 = await node.InitializeAndConfirmAsync();
                await node.SendBindingUpdateAsync(g1, node.UpdateRequest(g1.Generation), "KEY-UPDATE-REQ");
                var reply = await node.ExpectAckAsync("a BA");
                context.Check(reply.KeyDistribution is null || reply.KeyStatus is null, "KEY-DIST or KEY-STATUS, not both", reply.ToString());
                if (reply.KeyStatus is { } status)
                {
                    context.Check((byte)status.Code <= 4 && (status.Code != KeyStatusCode.KeySourceUnavailable || status.RetryAfterSeconds > 0),
                        "a defined code (Retry-After > 0 for code 1)", reply.ToString());
                }
            }));
        foreach (var (id, suite) in ((string, EspSuite)[])[("HA-SUITE-01", EspSuite.AesGcm256), ("HA-SUITE-02", EspSuite.AesCbc128HmacSha256)])
        {
            yield return Case(id, $"A whole exchange under suite {(byte)suite} ({(suite == EspSuite.AesGcm256 ? "AES-256-GCM" : "AES-128-CBC + HMAC-SHA-256-128")})",
                "PROTOCOL.md 1 (suites), 3 (key material)",
                [$"take a node provisioned with suite {(byte)suite}", "init, confirm, update, confirm", "every BA opens under that suite"],
                async context =>
                {
                    if (context.Settings.Implicit)
                    {
                        context.Inconclusive("the target runs in implicit mode");
                    }
                    var node = context.NewNode(suite);
                    var g1 = await node.InitializeAndConfirmAsync();
                    var (_, g2) = await node.UpdateAsync(g1);
                    await node.ConfirmAsync(g2);
                }, required: suite == EspSuite.AesGcm256);
        }
    }
}
