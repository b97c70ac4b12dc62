using System.Net.Http.Json;
using System.Net.Sockets;

namespace MipKeyAgent.Hosting;

/// <summary>Reads a running agent's status endpoint (Unix socket or 127.0.0.1 port).</summary>
public static class StatusClient
{
    public static async Task<AgentStatus> GetAsync(string? socketPath, int? port, CancellationToken cancellationToken = default)
    {
        using var handler = new SocketsHttpHandler();
        Uri uri;
        if (socketPath is not null)
        {
            var endPoint = new UnixDomainSocketEndPoint(socketPath);
            handler.ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
            uri = new Uri("http://localhost/status");
        }
        else if (port is { } p)
        {
            uri = new Uri($"http://127.0.0.1:{p}/status");
        }
        else
        {
            throw new ArgumentException("give the status socket path or the metrics port");
        }
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            var status = await client.GetFromJsonAsync<AgentStatus>(uri, StatusServer.Json, cancellationToken).ConfigureAwait(false);
            return status ?? throw new InvalidOperationException("the status endpoint answered nothing");
        }
        catch (HttpRequestException e)
        {
            var where = socketPath ?? $"127.0.0.1:{port}";
            throw new HttpRequestException($"no agent status endpoint at {where} (is the agent running with that --status-socket / --metrics-port?): {e.Message}", e);
        }
    }
}
