using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace StableDiffusion.Lora;

/// <summary>Merged weights back to their stored element type (reading them is <see cref="Weights.TorchCheckpointTensor.ToSingle"/>).</summary>
internal static class FloatConversion
{
    /// <summary>Whether <paramref name="type"/> is a floating-point type the merge reads and writes.</summary>
    public static bool IsSupported(TensorElementType type) =>
        type is TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16;

    /// <summary>Single precision values as little-endian elements of <paramref name="type"/> (rounded to nearest even).</summary>
    public static byte[] FromSingle(ReadOnlySpan<float> values, TensorElementType type)
    {
        switch (type)
        {
            case TensorElementType.Float:
                return MemoryMarshal.AsBytes(values).ToArray();
            case TensorElementType.Float16:
            {
                var bytes = new byte[values.Length * 2];
                TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(bytes.AsSpan()));
                return bytes;
            }

            case TensorElementType.BFloat16:
            {
                var bytes = new byte[values.Length * 2];
                Span<ushort> halves = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++)
                {
                    uint bits = BitConverter.SingleToUInt32Bits(values[i]);
                    halves[i] = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
                }

                return bytes;
            }

            default:
                throw new NotSupportedException($"Weights of type {type} cannot take a LoRA.");
        }
    }
}
