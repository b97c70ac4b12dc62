using System.Diagnostics;
using System.Globalization;

namespace MipKeyAgent.TestSupport;

/// <summary>
/// A throwaway PostgreSQL cluster (Debian's <c>postgresql</c>, scripts/prereqs.sh): <c>initdb</c> in a temporary
/// directory, the server listening only on a Unix socket in that directory, stopped and removed by
/// <see cref="Dispose"/>. PostgreSQL refuses to run as root, so under root the cluster belongs to <c>nobody</c>
/// (the tests still connect: the socket directory is theirs to reach). No mock: the stores under test talk to it.
/// </summary>
public sealed class PostgresCluster : IDisposable
{
    /// <summary>The cluster's superuser, trusted on its socket only.</summary>
    public const string User = "mipkey";

    private const string RunAs = "nobody";
    private int _databases;

    public PostgresCluster()
    {
        Bin = FindBin();
        Directory = Path.Combine(Path.GetTempPath(), "mipkey-pg-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Directory);
        try
        {
            if (Environment.UserName == "root")
            {
                Run("chown", [RunAs, Directory], asRoot: true);
            }
            Run(Path.Combine(Bin, "initdb"), ["-D", DataDirectory, "-U", User, "-A", "trust", "--no-sync", "-E", "UTF8", "--no-locale"]);
            Run(Path.Combine(Bin, "pg_ctl"), ["-D", DataDirectory, "-l", Path.Combine(Directory, "server.log"), "-w", "-t", "60",
                "-o", $"-k {Directory} -c listen_addresses='' -c max_connections=60 -c shared_buffers=16MB", "start"]);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The cluster's directory, also its socket directory.</summary>
    public string Directory { get; }

    public string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>The server binaries' directory (the newest installed major version).</summary>
    public string Bin { get; }

    /// <summary>Creates a new empty database and returns its name (<see cref="Url"/> gives its store URL).</summary>
    public string CreateDatabase()
    {
        string name = "t" + Interlocked.Increment(ref _databases).ToString(CultureInfo.InvariantCulture) + "_" + Guid.NewGuid().ToString("N")[..8];
        Psql("postgres", $"CREATE DATABASE {name}");
        return name;
    }

    /// <summary>The store URL of database <paramref name="name"/> on this cluster's socket.</summary>
    public string Url(string name) => $"postgresql://{User}@/{name}?host={Uri.EscapeDataString(Directory)}";

    /// <summary>Runs <paramref name="sql"/> in database <paramref name="database"/> (psql, stops at the first error); returns its output.</summary>
    public string Psql(string database, string sql) =>
        Run(Path.Combine(Bin, "psql"), ["-h", Directory, "-U", User, "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], asRoot: true);

    /// <summary>Stops the server at once (as a crash or an outage would); <see cref="Start"/> brings it back.</summary>
    public void Stop() => Run(Path.Combine(Bin, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "stop"]);

    public void Start() => Run(Path.Combine(Bin, "pg_ctl"), ["-D", DataDirectory, "-l", Path.Combine(Directory, "server.log"), "-w", "-t", "60",
        "-o", $"-k {Directory} -c listen_addresses='' -c max_connections=60 -c shared_buffers=16MB", "start"]);

    private static string FindBin()
    {
        const string root = "/usr/lib/postgresql";
        var bin = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => (Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : -1, Bin: Path.Combine(d, "bin")))
                .Where(d => d.Version > 0 && File.Exists(Path.Combine(d.Bin, "initdb")))
                .OrderByDescending(d => d.Version)
                .Select(d => d.Bin)
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException($"PostgreSQL server binaries not found under {root}: install Debian's postgresql (scripts/prereqs.sh)");
    }

    /// <summary>Runs a program, as <c>nobody</c> when this process is root unless <paramref name="asRoot"/>; throws with its output on failure.</summary>
    private static string Run(string program, IReadOnlyList<string> arguments, bool asRoot = false)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Environment.UserName == "root" && !asRoot)
        {
            start.FileName = "runuser";
            foreach (string a in (string[])["-u", RunAs, "--", program])
            {
                start.ArgumentList.Add(a);
            }
        }
        else
        {
            start.FileName = program;
        }
        foreach (string a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{program} did not finish in 120 s");
        }
        return process.ExitCode == 0
            ? stdout
            : throw new InvalidOperationException($"{Path.GetFileName(program)} {string.Join(' ', arguments)} failed ({process.ExitCode}): {stdout}{stderr.Result}");
    }

    public void Dispose()
    {
        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                Stop();
            }
        }
        finally
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
