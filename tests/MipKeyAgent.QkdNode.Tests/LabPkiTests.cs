namespace MipKeyAgent.QkdNode.Tests;

/// <summary>lab/pki/make-pki.sh: what it issues, that re-running changes nothing, key modes.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class LabPkiTests
{
    [Fact]
    public void MakePki_RunTwiceThenWithNewSae_KeepsExistingFilesAddsOnlyTheNewOne()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"mipkey-pki-idem-{Guid.NewGuid():N}");
        var script = Path.Combine(LabPki.RepoRoot, "lab", "pki", "make-pki.sh");
        try
        {
            Assert.Equal(0, Tool.Run("/bin/bash", [script, dir]).ExitCode);
            var first = Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
            Assert.Equal(
                ["ca.crt", "ca.key", "kme-a.crt", "kme-a.key", "kme-b.crt", "kme-b.key", "kme-c.crt", "kme-c.key", "link-kme-a.crt", "link-kme-a.key",
                 "link-kme-b.crt", "link-kme-b.key", "link-kme-c.crt", "link-kme-c.key", "sae-SAE_HA.crt", "sae-SAE_HA.key", "sae-SAE_MN1.crt", "sae-SAE_MN1.key"],
                first.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(0, Tool.Run("/bin/bash", [script, dir, "SAE_HA", "SAE_MN1", "SAE_MN7"]).ExitCode);
            var second = Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
            Assert.Equal(first.Count + 2, second.Count);
            Assert.All(first, kv => Assert.Equal(kv.Value, second[kv.Key]));
            foreach (var key in Directory.GetFiles(dir, "*.key"))
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
            }
            var verify = Tool.Run(Tool.OpenSsl, ["verify", "-CAfile", Path.Combine(dir, "ca.crt"), Path.Combine(dir, "sae-SAE_MN7.crt"), Path.Combine(dir, "kme-b.crt")]);
            Assert.Equal(0, verify.ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void MakePki_Certificates_CarryTheNamesTheNodeAndClientsCheck()
    {
        string Text(string file) => Tool.Run(Tool.OpenSsl, ["x509", "-noout", "-text", "-in", LabPki.Main.Path_(file)]).Stdout;
        var server = Text("kme-a.crt");
        Assert.Contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1", server);
        Assert.Contains("TLS Web Server Authentication", server);
        var sae = Text("sae-SAE_HA.crt");
        Assert.Contains("CN = SAE_HA", sae);
        Assert.Contains("TLS Web Client Authentication", sae);
        Assert.Contains("CN = link:KME_A", Text("link-kme-a.crt"));
    }

    [Fact]
    public void DefaultOutputDirectory_GitIgnored()
    {
        var r = Tool.Run("/usr/bin/git", ["-C", LabPki.RepoRoot, "check-ignore", "-q", "lab/pki/out/ca.key"]);
        Assert.Equal(0, r.ExitCode);
    }
}
