using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MipKeyAgent.Store;

namespace MipKeyAgent.Cli.Config;

/// <summary>
/// Edits a home agent's provisioning file for <c>mipkey provision</c>: adds, re-keys or removes a
/// <c>[mobile-node NAME]</c> section. The file must be owner-only (mode 0600) before and is after:
/// the new text is parsed like <see cref="HomeAgentConfig.Load"/> would (duplicates, bad SPIs and
/// unreadable key files are refused before anything is written), written to a 0600 temporary file
/// in the same directory, flushed, and renamed over the original, so a crash leaves the old or the
/// new file, never a mix. Every change appends one line to an audit log (who, when, what; never key
/// bytes). New initialization keys go only to a new 0600 key file named by the operator.
/// </summary>
internal static class ProvisioningFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Reads the file after checking its mode (refused when group or others may read or change it).</summary>
    public static (string Text, HomeAgentConfig Config) Read(string path)
    {
        var text = ConfigFiles.ReadText(path);
        ConfigFiles.CheckPrivate(path, 0, null, "it provisions initialization keys");
        return (text, HomeAgentConfig.Parse(path, text, BaseDirectory(path)));
    }

    /// <summary>The text with a new section appended.</summary>
    public static string Add(string text, string name, string homeAddress, uint spiMnToHa, uint spiHaToMn, string? suite, string keyFile)
    {
        var section = new StringBuilder();
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            section.Append('\n');
        }
        section.Append(CultureInfo.InvariantCulture, $"\n[mobile-node {name}]\nhome-address = {homeAddress}\ninitialization-key = file:{keyFile}\n");
        section.Append(CultureInfo.InvariantCulture, $"spi-mn-to-ha = {spiMnToHa}\nspi-ha-to-mn = {spiHaToMn}\n");
        if (suite is not null)
        {
            section.Append(CultureInfo.InvariantCulture, $"suite = {suite}\n");
        }
        return text + section;
    }

    /// <summary>The text with the node's <c>initialization-key</c> line pointing at <paramref name="keyFile"/>.</summary>
    public static string ReplaceKey(string file, string text, string name, string keyFile)
    {
        var section = FindSection(file, text, name);
        var entry = section.Entries.First(e => e.Key == "initialization-key");
        var lines = text.Split('\n');
        lines[entry.Line - 1] = $"initialization-key = file:{keyFile}";
        return string.Join('\n', lines);
    }

    /// <summary>The text without the node's section (its header up to the next section header).</summary>
    public static string Remove(string file, string text, string name)
    {
        var document = ConfigDocument.Parse(file, text);
        var section = FindSection(file, text, name);
        int next = document.Sections.Where(s => s.Line > section.Line).Select(s => s.Line).DefaultIfEmpty(int.MaxValue).Min();
        var lines = text.Split('\n');
        var kept = lines.Where((_, i) => i + 1 < section.Line || i + 1 >= next);
        return string.Join('\n', kept);
    }

    private static ConfigSection FindSection(string file, string text, string name) =>
        ConfigDocument.Parse(file, text).Sections.FirstOrDefault(s => s.Name == "mobile-node" && s.Label == name)
        ?? throw new ConfigException(file, 0, null, $"no [mobile-node {name}] section");

    /// <summary>Parses <paramref name="text"/> as the new file (refusing anything <c>mipkey ha</c> would refuse), then writes it atomically, mode 0600.</summary>
    public static HomeAgentConfig Write(string path, string text)
    {
        var config = HomeAgentConfig.Parse(path, text, BaseDirectory(path));
        AtomicFile.Replace(path, Encoding.UTF8.GetBytes(text), syncDirectory: false);
        return config;
    }

    /// <summary>
    /// Writes 32 fresh random octets as 64 hex digits to the new file <paramref name="path"/>,
    /// mode 0600; refuses an existing file (a key is never overwritten). The key is never returned.
    /// </summary>
    public static void CreateKeyFile(string path)
    {
        byte[] key = RandomNumberGenerator.GetBytes(32);
        byte[] text = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(key) + "\n");
        try
        {
            var options = OwnerOnlyOptions(FileMode.CreateNew);
            using var stream = new FileStream(path, options);
            stream.Write(text);
            stream.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new ConfigException(path, 0, null, "already exists; a new initialization key goes to a new file (it is never overwritten)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(text);
        }
    }

    /// <summary>
    /// Appends one line to the audit log (created 0600; refused when group or others may read or
    /// change it): UTC time, user, uid, action and its details. Never key bytes.
    /// </summary>
    public static void Audit(string auditPath, string action, string details)
    {
        var options = OwnerOnlyOptions(FileMode.Append);
        using var stream = new FileStream(auditPath, options);
        ConfigFiles.CheckPrivate(auditPath, 0, null, "it is the provisioning audit log");
        var who = Environment.GetEnvironmentVariable("SUDO_USER") is { Length: > 0 } sudo ? $"{Environment.UserName} (sudo by {sudo})" : Environment.UserName;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} user={who} uid={Uid()} pid={Environment.ProcessId} {action} {details}\n");
        stream.Write(Encoding.UTF8.GetBytes(line));
        stream.Flush(flushToDisk: true);
    }

    private static string Uid()
    {
        try
        {
            // /proc/self/status "Uid:\treal\teffective..." (Linux); no P/Invoke needed.
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            return line?.Split('\t', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1) ?? "?";
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static FileStreamOptions OwnerOnlyOptions(FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }
        return options;
    }

    private static string BaseDirectory(string path) => Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
}
