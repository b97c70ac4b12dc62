using System.Text.Json.Serialization;
using MipKeyAgent.KeySupply.Etsi014;

namespace MipKeyAgent.QkdNode;

// JSON of the node's own (non-ETSI) surfaces: key-use sessions and the inter-KME link.

/// <summary>Body of <c>POST /api/v1/sessions</c> (start request) and <c>PUT /api/v1/sessions/{id}</c>
/// (throughput change; peer_SAE_ID is ignored there).</summary>
internal sealed class SessionRequest
{
    [JsonPropertyName("peer_SAE_ID")] public string? PeerSaeId { get; set; }
    /// <summary>Requested throughput in keys per second.</summary>
    [JsonPropertyName("throughput")] public double? Throughput { get; set; }
}

internal sealed class SessionView
{
    [JsonPropertyName("session_ID")] public string SessionId { get; set; } = "";
    [JsonPropertyName("application_ID")] public string ApplicationId { get; set; } = "";
    [JsonPropertyName("peer_SAE_ID")] public string PeerSaeId { get; set; } = "";
    [JsonPropertyName("peer_KME_ID")] public string PeerKmeId { get; set; } = "";
    [JsonPropertyName("state")] public string State { get; set; } = "";
    [JsonPropertyName("throughput")] public double Throughput { get; set; }

    public static SessionView Of(KeyUseSession s) => new()
    {
        SessionId = s.SessionId.ToString(),
        ApplicationId = s.ApplicationId,
        PeerSaeId = s.PeerApplicationId,
        PeerKmeId = s.PeerKmeId,
        State = s.State switch { SessionState.Starting => "starting", SessionState.Connected => "connected", _ => "terminating" },
        Throughput = s.RequestedThroughput,
    };
}

internal sealed class SessionList
{
    [JsonPropertyName("sessions")] public List<SessionView> Sessions { get; set; } = [];
}

/// <summary>Master to slave: freshly generated keys, each sent once (retried only if unacknowledged).</summary>
internal sealed class LinkKeyPush
{
    [JsonPropertyName("source_KME_ID")] public string SourceKmeId { get; set; } = "";
    /// <summary>The master's generation rate toward the slave (keys/s) when it pushed.</summary>
    [JsonPropertyName("generation_rate")] public double? GenerationRate { get; set; }
    [JsonPropertyName("keys")] public List<EtsiKey> Keys { get; set; } = [];
}

/// <summary>Master to slave: these pooled keys were delivered by enc_keys to (master, slave).</summary>
internal sealed class LinkAssignment
{
    [JsonPropertyName("source_KME_ID")] public string SourceKmeId { get; set; } = "";
    [JsonPropertyName("master_SAE_ID")] public string MasterSaeId { get; set; } = "";
    [JsonPropertyName("slave_SAE_ID")] public string SlaveSaeId { get; set; } = "";
    [JsonPropertyName("size")] public int Size { get; set; }
    [JsonPropertyName("key_IDs")] public List<string> KeyIds { get; set; } = [];
}

/// <summary>Slave to master: a key-use session opened, changed or ended at the slave.</summary>
internal sealed class LinkSession
{
    [JsonPropertyName("source_KME_ID")] public string SourceKmeId { get; set; } = "";
    [JsonPropertyName("session_ID")] public string SessionId { get; set; } = "";
    [JsonPropertyName("application_ID")] public string ApplicationId { get; set; } = "";
    [JsonPropertyName("peer_SAE_ID")] public string PeerSaeId { get; set; } = "";
    [JsonPropertyName("throughput")] public double Throughput { get; set; }
    /// <summary>"starting" (opened), "connected" (throughput changed) or "terminating".</summary>
    [JsonPropertyName("state")] public string State { get; set; } = "";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SessionRequest))]
[JsonSerializable(typeof(SessionView))]
[JsonSerializable(typeof(SessionList))]
[JsonSerializable(typeof(LinkKeyPush))]
[JsonSerializable(typeof(LinkAssignment))]
[JsonSerializable(typeof(LinkSession))]
internal sealed partial class NodeJsonContext : JsonSerializerContext;
