namespace MipKeyAgent.Lab.Tests;

/// <summary>
/// Runs an agent as an unprivileged user (nobody), as the systemd units of packaging/systemd do: setpriv(1)
/// drops root and keeps CAP_NET_RAW and CAP_NET_ADMIN as ambient capabilities (the only ones in the
/// bounding set), or none at all. The directory holding the agent's provisioning, store and sockets is
/// given to that user, as StateDirectory= and ConfigurationDirectory= are to the unit's.
/// </summary>
internal static class Unprivileged
{
    public const string User = "nobody";

    public const string Group = "nogroup";

    /// <summary><paramref name="command"/> as <see cref="User"/> holding CAP_NET_RAW and CAP_NET_ADMIN only.</summary>
    public static string[] WithNetCapabilities(params string[] command) =>
        ["setpriv", $"--reuid={User}", $"--regid={Group}", "--clear-groups", "--inh-caps=-all,+net_raw,+net_admin",
            "--ambient-caps=-all,+net_raw,+net_admin", "--bounding-set=-all,+net_raw,+net_admin", "--", .. command];

    /// <summary><paramref name="command"/> as <see cref="User"/> holding no capability at all.</summary>
    public static string[] WithoutCapabilities(params string[] command) =>
        ["setpriv", $"--reuid={User}", $"--regid={Group}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--", .. command];

    /// <summary>
    /// <paramref name="command"/> with a /dev/net/tun that every user may open, as udev makes it (mode 0666): where the
    /// host's is root's alone (containers), a 0666 node made in <paramref name="directory"/> is bound over it, in the
    /// private mount namespace <c>ip netns exec</c> runs the command in (the host's node is untouched).
    /// </summary>
    public static string[] WithOpenTunDevice(string directory, params string[] command) =>
        ["sh", "-c", """n="$0/dev-net-tun"; mknod "$n" c 10 200 && chmod 0666 "$n" && mount --bind "$n" /dev/net/tun && exec "$@" """, directory, .. command];

    /// <summary><paramref name="command"/> unchanged (root), or <see cref="WithNetCapabilities"/>.</summary>
    public static string[] As(bool unprivileged, params string[] command) => unprivileged ? WithNetCapabilities(command) : command;

    /// <summary>Hands <paramref name="directory"/> and everything in it to <see cref="User"/> (the unit's directories).</summary>
    public static void GiveDirectory(string directory) => Shell.Run("chown", "-R", $"{User}:{Group}", directory);

    /// <summary>
    /// Every file and directory under <paramref name="directory"/> the agent created (not in <paramref name="before"/>):
    /// owned by <see cref="User"/>, and no group or other permission bit (0600 files and sockets, 0700 directories).
    /// </summary>
    public static void AssertPrivate(string directory, IReadOnlySet<string> before)
    {
        var created = Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Where(p => !before.Contains(p)).ToList();
        Assert.NotEmpty(created);
        foreach (var path in created)
        {
            // stat(1): owner and octal mode (sockets included).
            var parts = Shell.Run("stat", "-c", "%U %a", path).Trim().Split(' ');
            int mode = Convert.ToInt32(parts[1], 8);
            Assert.True(parts[0] == User && (mode & 0b000_111_111) == 0, $"{path}: owner {parts[0]}, mode {parts[1]}; expected {User}, 600 or 700");
        }
    }
}
