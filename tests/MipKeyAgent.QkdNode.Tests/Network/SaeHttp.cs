using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace MipKeyAgent.QkdNode.Tests.Network;

/// <summary>Plain HTTPS calls to a node as an SAE (or as a KME's link) with its lab certificate, for
/// the sessions API, which the ETSI client does not cover.</summary>
internal sealed class SaeHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly X509Certificate2 _certificate;

    public SaeHttp(Uri node, string certificatePem, string keyPem)
    {
        _certificate = X509Certificate2.CreateFromPemFile(certificatePem, keyPem);
        var certificate = _certificate;
        var ca = X509Certificate2.CreateFromPem(File.ReadAllText(LabPki.Main.Ca));
        _http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                ClientCertificates = [certificate],
                CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { ca }, RevocationMode = X509RevocationMode.NoCheck },
            },
        })
        { BaseAddress = node, Timeout = TimeSpan.FromSeconds(15) };
    }

    public static SaeHttp Sae(Uri node, string sae) => new(node, LabPki.Main.SaeCert(sae), LabPki.Main.SaeKey(sae));

    public static SaeHttp Link(Uri node, string kme) => new(node, LabPki.Main.Path_($"link-{kme}.crt"), LabPki.Main.Path_($"link-{kme}.key"));

    public async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }
        using var response = await _http.SendAsync(request);
        var raw = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, raw.Length == 0 ? default : JsonDocument.Parse(raw).RootElement.Clone());
    }

    public void Dispose()
    {
        _http.Dispose();
        _certificate.Dispose();
    }
}
