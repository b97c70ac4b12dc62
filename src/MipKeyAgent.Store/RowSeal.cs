using System.Security.Cryptography;
using System.Text;

namespace MipKeyAgent.Store;

/// <summary>
/// AES-256-GCM over one row: the plaintext is the row's secret (or nothing, when the row only
/// needs integrity), the associated data names the table, the row key, the column and every other
/// column's value. A row copied to another node or slot, or any edited column, fails to open.
/// Layout: nonce (12) || ciphertext || tag (16). Nonces are random: at 2^32 writes per key the
/// collision probability stays below 2^-32 (NIST SP 800-38D section 8.3).
/// </summary>
internal sealed class RowSeal(MasterKey key) : IDisposable
{
    private const int NonceLength = 12;
    private const int TagLength = 16;
    private static readonly byte[] Domain = "mipkey-store-v1"u8.ToArray();
    private readonly Lock _sealLock = new();

    /// <summary>The cipher of every <see cref="Seal"/> (one key schedule per store, not per write); used under <see cref="_sealLock"/>.</summary>
    private AesGcm? _sealCipher;
    private bool _disposed;

    public byte[] Seal(ReadOnlySpan<byte> plaintext, string associated)
    {
        byte[] sealedRow = new byte[NonceLength + plaintext.Length + TagLength];
        RandomNumberGenerator.Fill(sealedRow.AsSpan(0, NonceLength));
        byte[] associatedData = Associated(associated);
        lock (_sealLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            (_sealCipher ??= CreateCipher()).Encrypt(sealedRow.AsSpan(0, NonceLength), plaintext, sealedRow.AsSpan(NonceLength, plaintext.Length),
                sealedRow.AsSpan(NonceLength + plaintext.Length), associatedData);
        }
        return sealedRow;
    }

    /// <summary>Releases the sealing cipher (the store's Dispose; the master key itself is the store's or the caller's).</summary>
    public void Dispose()
    {
        lock (_sealLock)
        {
            _disposed = true;
            _sealCipher?.Dispose();
            _sealCipher = null;
        }
    }

    /// <summary>Opens a sealed row into a new array; throws <see cref="BindingStoreException"/> naming <paramref name="row"/>.</summary>
    /// <summary>A cipher under the master key for a run of <see cref="Open"/> calls on one thread (dispose it).</summary>
    public AesGcm CreateCipher() => new(key.Key, TagLength);

    public byte[] Open(byte[]? sealedRow, string associated, string row, AesGcm? cipher = null)
    {
        if (sealedRow is null || sealedRow.Length < NonceLength + TagLength)
        {
            throw new BindingStoreException($"{row}: sealed column missing or truncated (corrupted store)");
        }
        int length = sealedRow.Length - NonceLength - TagLength;
        byte[] plaintext = new byte[length];
        try
        {
            using var owned = cipher is null ? CreateCipher() : null;
            (cipher ?? owned!).Decrypt(sealedRow.AsSpan(0, NonceLength), sealedRow.AsSpan(NonceLength, length), sealedRow.AsSpan(NonceLength + length),
                plaintext, Associated(associated));
            return plaintext;
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new BindingStoreException(
                $"{row}: fails authentication under the master key (tampered, corrupted or moved row, or the wrong master key)", e);
        }
    }

    private static byte[] Associated(string associated)
    {
        byte[] text = Encoding.UTF8.GetBytes(associated);
        byte[] all = new byte[Domain.Length + 1 + text.Length];
        Domain.CopyTo(all, 0);
        text.CopyTo(all, Domain.Length + 1);
        return all;
    }
}
