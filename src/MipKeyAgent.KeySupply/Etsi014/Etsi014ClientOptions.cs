namespace MipKeyAgent.KeySupply.Etsi014;

/// <summary>Where the KME is and how the SAE proves who it is (docs/qkd.md).</summary>
public sealed class Etsi014ClientOptions
{
    /// <summary>KME base address, e.g. <c>https://kme-a.example:8443</c>; the client adds
    /// <c>/api/v1/keys/...</c> (ETSI GS QKD 014 §5.1).</summary>
    public required Uri KmeBaseUri { get; init; }

    /// <summary>PEM certificate of this SAE; its CN is the SAE ID the KME sees.</summary>
    public required string ClientCertificatePemPath { get; init; }

    /// <summary>PEM private key of that certificate.</summary>
    public required string ClientKeyPemPath { get; init; }

    /// <summary>PEM bundle of the CA(s) that issue KME certificates. Only these are trusted;
    /// the system store is not consulted.</summary>
    public required string CaBundlePemPath { get; init; }

    /// <summary>Whole-call timeout (connect, TLS, request, answer).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an enc_keys answer is still awaited after its call timed out, so keys the KME
    /// issued late are kept rather than lost (<see cref="Etsi014Client.LateAnswerWindow"/>).</summary>
    public TimeSpan LateAnswerWindow { get; init; } = TimeSpan.FromSeconds(30);
}
