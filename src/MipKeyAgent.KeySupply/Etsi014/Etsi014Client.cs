using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace MipKeyAgent.KeySupply.Etsi014;

/// <summary>
/// An SAE's client for ETSI GS QKD 014 V1.1.1 (REST key delivery) with mutual TLS.
/// Every call returns an <see cref="EtsiResult{T}"/>; HTTP-level failures (status codes,
/// timeouts, refused connections, TLS failures, unreadable bodies) never throw.
/// </summary>
public sealed class Etsi014Client : IDisposable
{
    private const string MediaType = "application/json";
    private readonly HttpClient _http;
    private readonly Uri _keysBase;
    private readonly TimeSpan _timeout;
    private readonly IDisposable[] _owned;
    private TimeSpan _lateAnswerWindow = TimeSpan.FromSeconds(30);

    /// <summary>Uses <paramref name="handler"/> as given (tests, custom transports).</summary>
    public Etsi014Client(HttpMessageHandler handler, Uri kmeBaseUri, TimeSpan timeout)
        : this(handler, kmeBaseUri, timeout, [])
    {
    }

    private Etsi014Client(HttpMessageHandler handler, Uri kmeBaseUri, TimeSpan timeout, IDisposable[] owned)
    {
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        var root = kmeBaseUri.AbsoluteUri.TrimEnd('/');
        _keysBase = new Uri(root + "/api/v1/keys/");
        _timeout = timeout;
        _owned = owned;
    }

    /// <summary>
    /// Builds a client whose TLS presents the SAE certificate from PEM files and accepts
    /// only a KME certificate that chains to the configured CA bundle and names the host.
    /// </summary>
    public static Etsi014Client Create(Etsi014ClientOptions options)
    {
        var handler = CreateHandler(options, out var owned);
        return new Etsi014Client(handler, options.KmeBaseUri, options.Timeout, owned) { LateAnswerWindow = options.LateAnswerWindow };
    }

    /// <summary>How long after a call timed out its answer is still awaited for the <c>late</c> callback
    /// of <see cref="GetEncKeysAsync(string, KeyRequest, Action{KeyContainer}?, CancellationToken)"/>.</summary>
    public TimeSpan LateAnswerWindow
    {
        get => _lateAnswerWindow;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            _lateAnswerWindow = value;
        }
    }

    /// <summary>The mutual-TLS handler of <see cref="Create"/>; <paramref name="owned"/> (certificate, CA bundle) outlive it.</summary>
    internal static SocketsHttpHandler CreateHandler(Etsi014ClientOptions options, out IDisposable[] owned)
    {
        var certificate = X509Certificate2.CreateFromPemFile(options.ClientCertificatePemPath, options.ClientKeyPemPath);
        var bundle = TrustedCaBundle.LoadPem(options.CaBundlePemPath);
        owned = [certificate, bundle];
        return new SocketsHttpHandler
        {
            ConnectTimeout = options.Timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            SslOptions = new SslClientAuthenticationOptions
            {
                EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
                // Always offer our certificate, even when the KME's acceptable-CA list is
                // empty or names a different CA (the KME decides, not our guess).
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                ClientCertificates = [certificate],
                RemoteCertificateValidationCallback = (_, cert, chain, errors) => bundle.ValidateServer(cert, chain, errors),
            },
        };
    }

    /// <summary><c>GET /api/v1/keys/{slave_SAE_ID}/status</c> (ETSI GS QKD 014 §5.1).</summary>
    public Task<EtsiResult<KmeStatus>> GetStatusAsync(string slaveSaeId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"{Escape(slaveSaeId)}/status", null, EtsiJsonContext.Default.KmeStatus, expectedKeys: null, cancellationToken);

    /// <summary><c>GET .../{slave_SAE_ID}/enc_keys?number=&amp;size=</c> (§5.2, GET form).</summary>
    public Task<EtsiResult<KeyContainer>> GetEncKeysAsync(string slaveSaeId, int? number = null, int? size = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>(2);
        if (number is { } n)
        {
            query.Add("number=" + n.ToString(CultureInfo.InvariantCulture));
        }
        if (size is { } s)
        {
            query.Add("size=" + s.ToString(CultureInfo.InvariantCulture));
        }
        var path = $"{Escape(slaveSaeId)}/enc_keys" + (query.Count > 0 ? "?" + string.Join('&', query) : "");
        return SendAsync(HttpMethod.Get, path, null, EtsiJsonContext.Default.KeyContainer, number ?? 1, cancellationToken);
    }

    /// <summary><c>POST .../{slave_SAE_ID}/enc_keys</c> with a Key request body (§5.2, §6.2).</summary>
    public Task<EtsiResult<KeyContainer>> GetEncKeysAsync(string slaveSaeId, KeyRequest request, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, EtsiJsonContext.Default.KeyRequest);
        return SendAsync(HttpMethod.Post, $"{Escape(slaveSaeId)}/enc_keys", body, EtsiJsonContext.Default.KeyContainer, request.Number ?? 1, cancellationToken);
    }

    /// <summary>
    /// <c>POST .../{slave_SAE_ID}/enc_keys</c> whose answer is not lost when it comes late: the call
    /// still returns <see cref="EtsiResultKind.Timeout"/> after the timeout, but the request goes on for
    /// <see cref="LateAnswerWindow"/> more, and the keys of an answer that arrives then (the KME has
    /// taken them from its pool and will never serve them again) go to <paramref name="late"/>, which
    /// owns them. Null <paramref name="late"/>: the request ends at the timeout.
    /// </summary>
    public async Task<EtsiResult<KeyContainer>> GetEncKeysAsync(string slaveSaeId, KeyRequest request, Action<KeyContainer>? late, CancellationToken cancellationToken = default)
    {
        if (late is null || _lateAnswerWindow == TimeSpan.Zero)
        {
            return await GetEncKeysAsync(slaveSaeId, request, cancellationToken).ConfigureAwait(false);
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(request, EtsiJsonContext.Default.KeyRequest);
        var call = SendAsync(HttpMethod.Post, $"{Escape(slaveSaeId)}/enc_keys", body, EtsiJsonContext.Default.KeyContainer, request.Number ?? 1, cancellationToken,
            _timeout + _lateAnswerWindow);
        var inTime = await Task.WhenAny(call, Task.Delay(_timeout, CancellationToken.None)).ConfigureAwait(false) == call;
        if (inTime || cancellationToken.IsCancellationRequested)
        {
            return await call.ConfigureAwait(false);
        }
        _ = call.ContinueWith(static (t, state) =>
        {
            if (t.IsCompletedSuccessfully && t.Result.Value is { Keys.Count: > 0 } keys)
            {
                ((Action<KeyContainer>)state!)(keys);
            }
            else
            {
                _ = t.Exception; // observed: the caller gave up on this call
            }
        }, late, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return EtsiResult<KeyContainer>.TimedOut(_timeout);
    }

    /// <summary><c>GET .../{master_SAE_ID}/dec_keys?key_ID=</c> for one key (§5.3, GET form).</summary>
    public Task<EtsiResult<KeyContainer>> GetDecKeysAsync(string masterSaeId, string keyId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, $"{Escape(masterSaeId)}/dec_keys?key_ID={Uri.EscapeDataString(keyId)}", null, EtsiJsonContext.Default.KeyContainer, 1, cancellationToken);

    /// <summary><c>POST .../{master_SAE_ID}/dec_keys</c> with a Key IDs body (§5.3, §6.4).</summary>
    public Task<EtsiResult<KeyContainer>> GetDecKeysAsync(string masterSaeId, KeyIds keyIds, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(keyIds, EtsiJsonContext.Default.KeyIds);
        return SendAsync(HttpMethod.Post, $"{Escape(masterSaeId)}/dec_keys", body, EtsiJsonContext.Default.KeyContainer, keyIds.KeyIdList.Count, cancellationToken);
    }

    private static string Escape(string saeId) => Uri.EscapeDataString(saeId);

    private async Task<EtsiResult<T>> SendAsync<T>(HttpMethod method, string relative, byte[]? body, JsonTypeInfo<T> typeInfo, int? expectedKeys, CancellationToken cancellationToken,
        TimeSpan? limit = null)
        where T : class
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit ?? _timeout);
        using var request = new HttpRequestMessage(method, new Uri(_keysBase, relative));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaType));
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(MediaType);
        }
        byte[] payload;
        HttpStatusCode status;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            status = response.StatusCode;
            payload = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return EtsiResult<T>.TimedOut(_timeout);
        }
        catch (HttpRequestException ex)
        {
            return EtsiResult<T>.TransportFailure(ex.HttpRequestError + ": " + ex.Message);
        }
        try
        {
            return Interpret(status, payload, typeInfo, expectedKeys);
        }
        finally
        {
            // The body of a key container held the keys in base64.
            CryptographicOperations.ZeroMemory(payload);
        }
    }

    private static EtsiResult<T> Interpret<T>(HttpStatusCode status, byte[] payload, JsonTypeInfo<T> typeInfo, int? expectedKeys)
        where T : class
    {
        switch (status)
        {
            case HttpStatusCode.OK:
                if (!TryParse(payload, typeInfo, out var value))
                {
                    return EtsiResult<T>.Unexpected(status, "200 with a body that is not a " + typeof(T).Name);
                }
                if (value is KeyContainer container && expectedKeys is { } expected && container.Keys.Count < expected)
                {
                    return EtsiResult<T>.NoKeyNow(status, null, value, $"asked for {expected} keys, got {container.Keys.Count}");
                }
                return EtsiResult<T>.Ok(value);
            case HttpStatusCode.Unauthorized:
                return EtsiResult<T>.Unauthorized();
            case HttpStatusCode.BadRequest:
            {
                var error = TryParse(payload, EtsiJsonContext.Default.EtsiError, out var e) ? e : null;
                return error is not null && SaysPoolIsEmpty(error.Message)
                    ? EtsiResult<T>.NoKeyNow(status, error, null, error.Message)
                    : EtsiResult<T>.BadRequest(error);
            }
            case HttpStatusCode.ServiceUnavailable:
            case HttpStatusCode.NotFound:
            {
                var error = TryParse(payload, EtsiJsonContext.Default.EtsiError, out var e) ? e : null;
                return EtsiResult<T>.NoKeyNow(status, error, null, error?.Message ?? $"{(int)status} without an error body");
            }
            default:
                return EtsiResult<T>.Unexpected(status, $"HTTP {(int)status}");
        }
    }

    /// <summary>
    /// KMEs in the wild answer an exhausted pool with a 400 (RFC-NOTES: "Servers in the
    /// wild answer an empty pool variously"); recognise the usual wordings.
    /// </summary>
    internal static bool SaysPoolIsEmpty(string message)
    {
        ReadOnlySpan<string> markers = ["not enough", "insufficient", "no key", "no more key", "exhaust", "empty", "not available", "unavailable", "keys available"];
        foreach (var marker in markers)
        {
            if (message.Contains(marker, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    private static bool TryParse<T>(byte[] payload, JsonTypeInfo<T> typeInfo, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T? value)
        where T : class
    {
        try
        {
            value = payload.Length == 0 ? null : JsonSerializer.Deserialize(payload, typeInfo);
            return value is not null;
        }
        catch (JsonException)
        {
            value = null;
            return false;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        foreach (var owned in _owned)
        {
            owned.Dispose();
        }
    }
}
