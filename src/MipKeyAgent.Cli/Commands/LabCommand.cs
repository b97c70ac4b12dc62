using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MipKeyAgent.Tools.Lab;

namespace MipKeyAgent.Cli.Commands;

/// <summary>
/// <c>mipkey lab</c>: the network-namespace lab. <c>up|down|status</c> build, remove and show the
/// one topology definition (<see cref="NamespaceTopology"/>, which lab/topology.sh calls through
/// this command); <c>run</c>, <c>tunnel-demo</c> and <c>record</c> front the scripts of <c>lab/</c>,
/// which stay usable on their own and are found next to the build or above the current directory.
/// </summary>
internal static class LabCommand
{
    public static Command Create(TextWriter output)
    {
        var command = new Command("lab",
            "Builds network-namespace topologies and runs the real home agent and mobile node processes in them (root; " +
            "iproute2). up/down/status are what lab/topology.sh runs; run, tunnel-demo and record wrap lab/run-scenario.sh, " +
            "lab/tunnel-demo.sh and lab/record-captures.sh (see lab/README.md).\n\n" +
            "Examples:\n" +
            "  sudo mipkey lab up                       home link, router and one foreign link (namespaces mk-home, mk-rtr, mk-fl1)\n" +
            "  sudo mipkey lab status; sudo mipkey lab down\n" +
            "  sudo mipkey lab run rekey                keys rotating live every 3 s, then teardown\n" +
            "  sudo mipkey lab run lossy --loss 20      20 % of HA->MN ESP dropped: KEY-DIST resends, no re-init\n" +
            "  sudo mipkey lab run ha-restart           kill -9 of the HA, restart on its SQLite store\n" +
            "  sudo mipkey lab tunnel-demo 30           ping through the tunnel while keys rotate\n" +
            "  sudo mipkey lab record lost-ba           record captures/lab-lost-ba.pcap from real processes (lab/record-captures.sh)");
        foreach (var verb in new[] { "up", "down", "status" })
        {
            command.Subcommands.Add(TopologyCommand(output, verb));
        }

        command.Subcommands.Add(RunCommand(output));
        command.Subcommands.Add(TunnelDemoCommand(output));
        command.Subcommands.Add(RecordCommand(output));
        return command;
    }

    private static Command TopologyCommand(TextWriter output, string verb)
    {
        var prefix = new Option<string?>("--prefix")
        {
            Description = $"Prefix of every namespace and interface name (default: $MK_PREFIX, else {NamespaceTopology.DefaultPrefix}).",
        };
        var nodes = new Option<int?>("--nodes") { Description = "Foreign links, one per mobile node (default: $MK_NODES, else 1)." };
        var correspondent = new Option<bool>("--correspondent")
        {
            Description = $"The home link as a bridge with a correspondent ({NamespaceTopology.CorrespondentAddress}, namespace PREFIX+cn) beside the home agent.",
        };
        Range(nodes, 0, NamespaceTopology.MaxNodes, $"0 to {NamespaceTopology.MaxNodes} foreign links");
        var sub = new Command(verb, verb switch
        {
            "up" => "Builds (or rebuilds) the topology: namespaces, veths, addresses (2001:db8::/32), routes, forwarding on the router.",
            "down" => "Removes every namespace of the prefix.",
            _ => "Shows the addresses and routes of each namespace of the prefix.",
        })
        {
            prefix,
        };
        if (verb == "up")
        {
            sub.Options.Add(nodes);
            sub.Options.Add(correspondent);
        }

        sub.SetAction(parse => RunTopology(output, verb, Topology(parse.GetValue(prefix), parse.GetValue(nodes), parse.GetValue(correspondent))));
        return sub;
    }

    private static NamespaceTopology Topology(string? prefix, int? nodes, bool correspondent)
    {
        prefix ??= Environment.GetEnvironmentVariable("MK_PREFIX") is { Length: > 0 } p ? p : NamespaceTopology.DefaultPrefix;
        if (nodes is null && Environment.GetEnvironmentVariable("MK_NODES") is { Length: > 0 } n)
        {
            nodes = int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed
                : throw new Config.ConfigException("lab", 0, "MK_NODES", $"\"{n}\" is not a number of foreign links");
        }

        try
        {
            return new NamespaceTopology(prefix, nodes ?? 1, correspondent);
        }
        catch (ArgumentException e)
        {
            throw new Config.ConfigException("lab", 0, null, e.Message);
        }
    }

    private static int RunTopology(TextWriter output, string verb, NamespaceTopology topology)
    {
        RequireRoot($"sudo mipkey lab {verb}");
        try
        {
            switch (verb)
            {
                case "up":
                    topology.Up(LabProcess.Run);
                    output.Write(topology.Status(LabProcess.Run));
                    break;
                case "down":
                    topology.Down(LabProcess.Run);
                    break;
                default:
                    output.Write(topology.Status(LabProcess.Run));
                    break;
            }

            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            Console.Error.WriteLine($"mipkey: lab {verb}: {e.Message.Trim()}{(verb == "up" ? " (what was built is removed)" : "")}");
            return 1;
        }
    }

    private static Command RunCommand(TextWriter output)
    {
        var scenario = new Argument<string>("scenario") { Description = "rekey | lossy | ha-restart" };
        scenario.AcceptOnlyFromAmong("rekey", "lossy", "ha-restart");
        var loss = new Option<int?>("--loss") { Description = "Percent of HA->MN ESP packets the router drops (tc netem, or lab/lossy-router.py without netem)." };
        var duration = new Option<int?>("--duration") { Description = "Seconds the scenario runs." };
        var nodes = new Option<int?>("--nodes") { Description = "Mobile nodes (1..9)." };
        var keep = new Option<bool>("--keep") { Description = "Keep the temporary directory with logs and configs." };
        Range(loss, 0, 100, "a percentage, 0 to 100");
        Range(duration, 1, int.MaxValue, "seconds, at least 1");
        Range(nodes, 1, 9, "1 to 9 nodes");
        var run = new Command("run", "lab/run-scenario.sh: builds the topology, starts ha and mn, shows keys rotating live, prints the counters, tears down.")
        {
            scenario, loss, duration, nodes, keep,
        };
        run.SetAction(parse =>
        {
            var args = new List<string> { parse.GetValue(scenario)! };
            foreach (var (option, value) in new[] { (loss, parse.GetValue(loss)), (duration, parse.GetValue(duration)), (nodes, parse.GetValue(nodes)) })
            {
                if (value is { } v)
                {
                    args.AddRange([option.Name, v.ToString(CultureInfo.InvariantCulture)]);
                }
            }

            if (parse.GetValue(keep))
            {
                args.Add("--keep");
            }

            return RunScript(output, "run-scenario.sh", args);
        });
        return run;
    }

    private static Command TunnelDemoCommand(TextWriter output)
    {
        var seconds = new Argument<int?>("seconds") { Description = "How long to ping (default: the script's).", Arity = ArgumentArity.ZeroOrOne };
        var demo = new Command("tunnel-demo", "lab/tunnel-demo.sh: correspondent, HA, router and MN with a tun; ping runs uninterrupted through key rotations.")
        {
            seconds,
        };
        demo.SetAction(parse => RunScript(output, "tunnel-demo.sh",
            parse.GetValue(seconds) is { } s ? [s.ToString(CultureInfo.InvariantCulture)] : []));
        return demo;
    }

    private static Command RecordCommand(TextWriter output)
    {
        var recordings = new Argument<string[]>("scenarios")
        {
            Description = "startup-rekey | lost-ba | ha-restart-store | ha-restart-volatile | many-nodes (default: all)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        recordings.AcceptOnlyFromAmong("startup-rekey", "lost-ba", "ha-restart-store", "ha-restart-volatile", "many-nodes");
        var record = new Command("record",
            "lab/record-captures.sh: records golden captures (captures/lab-NAME.pcap and the TEST KEYS provisioning that decrypts it) from " +
            "real ha and mn processes in the lab topology, waiting for conditions read from their status sockets.")
        {
            recordings,
        };
        record.SetAction(parse => RunScript(output, "record-captures.sh", parse.GetValue(recordings) ?? []));
        return record;
    }

    private static void Range(Option<int?> option, int min, int max, string what) => option.Validators.Add(r =>
    {
        if (r.GetValueOrDefault<int?>() is { } v && (v < min || v > max))
        {
            r.AddError($"{option.Name} {v}: give {what}");
        }
    });

    private static void RequireRoot(string how)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            throw new UnauthorizedAccessException($"lab: needs root (network namespaces): {how}");
        }
    }

    /// <summary>The lab/ folder: above the build output, above the current directory, or in the repository it was built from.</summary>
    internal static string? FindLabDirectory()
    {
        var sourceRoot = typeof(LabCommand).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .OfType<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "MipKeyAgent.SourceRoot")?.Value;
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory, sourceRoot ?? "" })
        {
            if (start.Length == 0)
            {
                continue;
            }
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "lab", "topology.sh")))
                {
                    return Path.Combine(dir.FullName, "lab");
                }
            }
        }
        return null;
    }

    private static int RunScript(TextWriter output, string script, IReadOnlyList<string> args)
    {
        if (FindLabDirectory() is not { } lab)
        {
            throw new Config.ConfigException("lab", 0, null, "no lab/topology.sh beside this build or above the current directory; run from the repository");
        }
        RequireRoot($"sudo mipkey lab ...  (or sudo {Path.Combine(lab, script)})");
        var psi = new ProcessStartInfo("bash") { UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(lab, script));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi)!;
        process.WaitForExit();
        return process.ExitCode;
    }
}
