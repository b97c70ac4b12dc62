using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using MipKeyAgent.KeySupply.Etsi014;

namespace MipKeyAgent.QkdNode;

/// <summary>
/// Mutual TLS at the node: every client certificate is judged against the CA bundle in the
/// handshake (with the intermediates the client sent), and a client without one, or with one from
/// another CA, gets 401 with the reason on every request and one log line per connection (at most one a second per reason, with the count of those not
/// logged). The handshake itself completes: .NET's TLS on Linux closes a refused handshake without
/// any alert, which the client only sees as "unexpected EOF"; an HTTP answer names the problem.
/// </summary>
internal sealed class ClientCertificateCheck(TrustedCaBundle bundle, ILogger logger, TimeProvider time)
{
    private const string ItemKey = "mipkey.client-certificate-refusal";
    private static readonly object Accepted = new();

    private readonly ConditionalWeakTable<X509Certificate2, object> _chained = [];
    private readonly Lock _gate = new();
    private readonly Dictionary<ClientCertificateRefusal, (long LastLoggedTicks, long Unlogged)> _logState = [];
    private long _missing;
    private long _untrusted;

    public long Missing => Interlocked.Read(ref _missing);

    public long Untrusted => Interlocked.Read(ref _untrusted);

    /// <summary>Kestrel's client-certificate callback: notes whether the certificate chains to the
    /// bundle (with the intermediates the client sent) and lets the handshake complete.</summary>
    public bool NoteChain(X509Certificate2 certificate, X509Chain? chain)
    {
        if (bundle.Verifies(certificate, chain))
        {
            _chained.AddOrUpdate(certificate, Accepted);
        }
        return true;
    }

    /// <summary>Null when the connection's client certificate chains to the bundle; otherwise why
    /// not. Judged, counted and logged once per connection.</summary>
    public ClientCertificateRefusal? Refusal(HttpContext ctx)
    {
        var items = ctx.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is not null && items.TryGetValue(ItemKey, out var known))
        {
            return known as ClientCertificateRefusal?;
        }
        var refusal = Judge(ctx.Connection.ClientCertificate, ctx.Connection.RemoteIpAddress is { } ip ? $"{ip}:{ctx.Connection.RemotePort}" : "?");
        if (items is not null)
        {
            items[ItemKey] = refusal is { } r ? r : Accepted;
        }
        return refusal;
    }

    private ClientCertificateRefusal? Judge(X509Certificate2? certificate, string peer)
    {
        ClientCertificateRefusal refusal;
        string detail;
        if (certificate is null)
        {
            refusal = ClientCertificateRefusal.Missing;
            detail = "no client certificate";
            Interlocked.Increment(ref _missing);
        }
        else if (_chained.TryGetValue(certificate, out _) || bundle.Verifies(certificate))
        {
            return null;
        }
        else
        {
            refusal = ClientCertificateRefusal.Untrusted;
            detail = $"client certificate {certificate.Subject} (issuer {certificate.Issuer}) does not chain to the configured CA";
            Interlocked.Increment(ref _untrusted);
        }
        Log(refusal, peer, detail);
        return refusal;
    }

    public static string Message(ClientCertificateRefusal refusal) => refusal switch
    {
        ClientCertificateRefusal.Missing => "a client certificate is required (mutual TLS, ETSI GS QKD 014 4.3); none was presented",
        _ => "the client certificate is not issued by a CA this KME trusts",
    };

    private void Log(ClientCertificateRefusal refusal, string peer, string detail)
    {
        long now = time.GetTimestamp();
        long unlogged;
        lock (_gate)
        {
            _logState.TryGetValue(refusal, out var state);
            if (state.LastLoggedTicks != 0 && time.GetElapsedTime(state.LastLoggedTicks, now) < TimeSpan.FromSeconds(1))
            {
                _logState[refusal] = (state.LastLoggedTicks, state.Unlogged + 1);
                return;
            }
            unlogged = state.Unlogged;
            _logState[refusal] = (now, 0);
        }
        QkdNodeLog.ClientRefused(logger, peer, detail, unlogged > 0 ? $" ({unlogged} more such clients since the last line)" : "");
    }
}

internal static partial class QkdNodeLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "TLS client {Peer} refused: {Detail}; every request gets 401{More}")]
    public static partial void ClientRefused(ILogger logger, string peer, string detail, string more);
}

internal enum ClientCertificateRefusal
{
    Missing,
    Untrusted,
}
