using System.Text;

namespace StableDiffusion.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet, which CLIP's vocabulary is written in: each UTF-8 byte is one printable character (the
/// printable Latin-1 bytes stand for themselves, the others are shifted above U+00FF).
/// </summary>
internal static class ByteLevelText
{
    private static readonly Dictionary<char, byte> CharacterToByte = BuildCharacterToByte();

    /// <summary>
    /// Decodes tokens as the byte-level decoder does: a token written in the alphabet gives its bytes, any other token
    /// (such as a special token with characters outside it) its UTF-8; invalid UTF-8 becomes U+FFFD.
    /// </summary>
    /// <param name="tokens">The tokens in order.</param>
    public static string Decode(IEnumerable<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (string token in tokens)
        {
            int start = bytes.Count;
            foreach (char c in token)
            {
                if (!CharacterToByte.TryGetValue(c, out byte b))
                {
                    bytes.RemoveRange(start, bytes.Count - start);
                    bytes.AddRange(Encoding.UTF8.GetBytes(token));
                    break;
                }

                bytes.Add(b);
            }
        }

        return Encoding.UTF8.GetString([.. bytes]);
    }

    private static Dictionary<char, byte> BuildCharacterToByte()
    {
        var map = new Dictionary<char, byte>(256);
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            map[printable ? (char)b : (char)(256 + shifted++)] = (byte)b;
        }

        return map;
    }
}
