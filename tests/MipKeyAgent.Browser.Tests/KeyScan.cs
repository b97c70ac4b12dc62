using System.Text;

namespace MipKeyAgent.Browser.Tests;

/// <summary>Looks for key bytes in text: each key as lower and upper hex and as base64 (with and without padding).</summary>
internal static class KeyScan
{
    public static IEnumerable<string> Forms(byte[] key)
    {
        var hex = Convert.ToHexString(key);
        var base64 = Convert.ToBase64String(key);
        return [hex, hex.ToLowerInvariant(), base64, base64.TrimEnd('='), base64.TrimEnd('=').Replace('+', '-').Replace('/', '_')];
    }

    /// <summary>Fails naming the first key (by its index and form) found in <paramref name="text"/>.</summary>
    public static void AssertNone(string text, IReadOnlyCollection<byte[]> keys, string where)
    {
        Assert.NotEmpty(keys);
        int i = 0;
        foreach (var key in keys)
        {
            Assert.True(key.Length >= 16, $"key {i} is {key.Length} octets; a scan for so short a string would be meaningless");
            foreach (var form in Forms(key))
            {
                Assert.False(text.Contains(form, StringComparison.Ordinal), $"key {i} ({key.Length} octets) appears in {where} as {Describe(form)}");
            }
            i++;
        }
    }

    private static string Describe(string form) => new StringBuilder().Append(form.Length).Append(" characters").ToString();
}
