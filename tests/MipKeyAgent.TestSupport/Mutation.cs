namespace MipKeyAgent.TestSupport;

/// <summary>
/// The mutation fuzzers' one mutator: bit flips, overwrites, truncation, extension, insertion,
/// deletion, garbage and interesting 32-bit values (lengths, magic numbers) at aligned offsets.
/// </summary>
public static class Mutation
{
    private static readonly uint[] InterestingWords = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0A0D0D0A, 0x1A2B3C4D, 12, 16, 28, 32];

    /// <summary>A copy of <paramref name="input"/> changed by one random operation, never equal to it.</summary>
    public static byte[] Mutate(Random random, byte[] input)
    {
        while (true)
        {
            byte[] mutant = MutateOnce(random, input);
            if (!mutant.AsSpan().SequenceEqual(input))
            {
                return mutant;
            }
        }
    }

    private static byte[] MutateOnce(Random random, byte[] input)
    {
        var list = new List<byte>(input);
        switch (random.Next(8))
        {
            case 0: // flip bits
                for (int n = random.Next(1, 5); n > 0 && list.Count > 0; n--)
                {
                    int index = random.Next(list.Count);
                    list[index] ^= (byte)(1 << random.Next(8));
                }

                break;
            case 1: // overwrite octets
                for (int n = random.Next(1, 5); n > 0 && list.Count > 0; n--)
                {
                    list[random.Next(list.Count)] = (byte)random.Next(256);
                }

                break;
            case 2: // truncate
                list = list.GetRange(0, random.Next(list.Count));
                break;
            case 3: // extend
                for (int n = random.Next(1, 33); n > 0; n--)
                {
                    list.Add((byte)random.Next(256));
                }

                break;
            case 4: // insert
                {
                    int at = random.Next(list.Count + 1);
                    var extra = new byte[random.Next(1, 9)];
                    random.NextBytes(extra);
                    list.InsertRange(at, extra);
                    break;
                }

            case 5: // delete a range
                if (list.Count > 0)
                {
                    int at = random.Next(list.Count);
                    list.RemoveRange(at, random.Next(1, Math.Min(9, list.Count - at) + 1));
                }

                break;
            case 6: // random garbage of similar length
                {
                    var garbage = new byte[random.Next(input.Length + 17)];
                    random.NextBytes(garbage);
                    return garbage;
                }

            default: // an interesting 32-bit value at a 4-aligned offset, random byte order
                if (list.Count >= 4)
                {
                    int at = random.Next(list.Count / 4) * 4;
                    uint word = InterestingWords[random.Next(InterestingWords.Length)];
                    for (int k = 0; k < 4; k++)
                    {
                        int shift = random.Next(2) == 0 ? 8 * k : 8 * (3 - k);
                        list[at + k] = (byte)(word >> shift);
                    }
                }
                else
                {
                    list.Add(0);
                }

                break;
        }

        return [.. list];
    }
}
