using System.Buffers;
using System.Globalization;
using System.Numerics.Tensors;

namespace StableDiffusion.Safety;

/// <summary>
/// CLIP image pre-processing exactly as transformers' <c>CLIPImageProcessor</c> does it when diffusers prepares the
/// safety checker's <c>clip_input</c>: decoded images in [0, 1] are quantised to 8 bits as <c>numpy_to_pil</c> does
/// (<c>round(x * 255)</c>, ties to even), resized with the antialiased filter of torchvision or Pillow (bicubic for
/// CLIP), centre-cropped, rescaled and normalised with the model's mean and standard deviation, and returned as an NCHW
/// float tensor.
/// </summary>
/// <remarks>
/// <para>
/// The output equals transformers' to float rounding for the chosen <see cref="ClipImageProcessorConfig.Backend"/>: the
/// resize reproduces torch's (or Pillow's) 8-bit fixed-point resampling bit for bit, the centre crop rounds odd margins
/// as that backend does, and rescale and normalise follow its order of float32 operations.
/// </para>
/// <para>Immutable and safe to use from several threads at once.</para>
/// </remarks>
public sealed class ClipImageProcessor
{
    private const int Channels = 3;

    /// <summary>The final value of each 8-bit level, per channel: 3 x 256 entries.</summary>
    private readonly float[] _levels;

    /// <summary>The plan for the last input size seen; pipelines feed one size over and over.</summary>
    private Plan? _lastPlan;

    /// <summary>Creates a processor with the given settings.</summary>
    /// <param name="config">The settings, usually read with <see cref="ClipImageProcessorConfig.Load"/>.</param>
    /// <exception cref="PreprocessorConfigException">
    /// A setting is out of range, or the torchvision backend is asked for a filter other than bicubic.
    /// </exception>
    public ClipImageProcessor(ClipImageProcessorConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        config.ValidateBackend();
        Config = config;
        _levels = BuildLevels(config);
    }

    /// <summary>The settings this processor applies.</summary>
    public ClipImageProcessorConfig Config { get; }

    /// <summary>Reads a model's <c>feature_extractor/preprocessor_config.json</c> and creates its processor.</summary>
    /// <param name="preprocessorConfigPath">The path of <c>preprocessor_config.json</c>.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="PreprocessorConfigException">The file is not a valid CLIP image processor configuration.</exception>
    public static ClipImageProcessor Load(string preprocessorConfigPath) => new(ClipImageProcessorConfig.Load(preprocessorConfigPath));

    /// <summary>The height and width of the processed image for an input of the given size.</summary>
    /// <param name="height">The input height in pixels.</param>
    /// <param name="width">The input width in pixels.</param>
    public ImageSize GetOutputSize(int height, int width) => GetPlan(height, width).Output;

    /// <summary>
    /// Pre-processes a batch of decoded images, as the diffusers pipelines pass them to the safety checker.
    /// </summary>
    /// <param name="images">Dense NHWC floats in [0, 1]: [batch, height, width, 3], RGB.</param>
    /// <returns>The CLIP input, NCHW: [batch, 3, crop height, crop width].</returns>
    /// <exception cref="ArgumentException">The tensor is not [batch, height, width, 3], is empty, or is not dense.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value is NaN or outside [0, 1].</exception>
    public Tensor<float> Preprocess(ReadOnlyTensorSpan<float> images)
    {
        (int batch, int height, int width) = ValidateImages(images, nameof(images));
        ImageSize size = GetOutputSize(height, width);
        // Every element is written (padding included), so the array need not be zeroed first.
        float[] output = GC.AllocateUninitializedArray<float>(batch * Channels * size.Height * size.Width);
        PreprocessValidated(images.AsSpan(), batch, height, width, output);
        return Tensor.Create(output, [batch, Channels, size.Height, size.Width]);
    }

    /// <summary>Pre-processes one 8-bit RGB image, for use of this package on its own.</summary>
    /// <param name="rgb">The image's pixels: <paramref name="height"/> rows of <paramref name="width"/> × 3 bytes (R, G, B),
    /// top row first, no padding.</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <returns>The CLIP input, NCHW: [1, 3, crop height, crop width].</returns>
    /// <exception cref="ArgumentException">The byte count is not width × height × 3.</exception>
    public Tensor<float> Preprocess(ReadOnlySpan<byte> rgb, int width, int height)
    {
        ValidatePixels(rgb, width, height, nameof(rgb));
        Plan plan = GetPlan(height, width);
        ImageSize size = plan.Output;
        float[] output = GC.AllocateUninitializedArray<float>(Channels * size.Height * size.Width);
        ProcessOne(plan, rgb, output);
        return Tensor.Create(output, [1, Channels, size.Height, size.Width]);
    }

    /// <summary>Checks that <paramref name="rgb"/> holds exactly a <paramref name="width"/> × <paramref name="height"/> RGB image.</summary>
    internal static void ValidatePixels(ReadOnlySpan<byte> rgb, int width, int height, string parameterName)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if ((long)width * height * Channels != rgb.Length)
        {
            throw new ArgumentException(
                $"A {width}x{height} RGB image has {(long)width * height * Channels} bytes (3 per pixel, no row padding), but {rgb.Length} were given.", parameterName);
        }
    }

    /// <summary>
    /// Checks that <paramref name="images"/> is a dense NHWC RGB batch of values in [0, 1] and returns its dimensions.
    /// </summary>
    internal static (int Batch, int Height, int Width) ValidateImages(ReadOnlyTensorSpan<float> images, string parameterName)
    {
        ReadOnlySpan<nint> lengths = images.Lengths;
        if (lengths.Length != 4)
        {
            throw new ArgumentException(
                $"Images must be a rank-4 NHWC tensor [batch, height, width, 3]; got rank {lengths.Length} with shape {FormatShape(lengths)}.",
                parameterName);
        }

        if (lengths[3] != Channels)
        {
            string hint = lengths[1] == Channels ? " It looks like NCHW [batch, 3, height, width]: transpose it to NHWC first." : string.Empty;
            throw new ArgumentException(
                $"Images must have 3 (RGB) channels in the last dimension, NHWC [batch, height, width, 3]; got shape {FormatShape(lengths)}.{hint}",
                parameterName);
        }

        if (lengths[0] == 0 || lengths[1] == 0 || lengths[2] == 0)
        {
            throw new ArgumentException($"Images must not be empty; got shape {FormatShape(lengths)}.", parameterName);
        }

        if (!images.IsDense)
        {
            throw new ArgumentException("Images must be a dense (contiguous, row-major) tensor; call ToDenseTensor() first.", parameterName);
        }

        ReadOnlySpan<float> values = images.AsSpan();
        float min = TensorPrimitives.Min(values);
        float max = TensorPrimitives.Max(values);
        if (float.IsNaN(min) || float.IsNaN(max) || min < 0f || max > 1f)
        {
            int pixelValues = checked((int)(lengths[1] * lengths[2] * Channels));
            int at = IndexOfInvalid(values);
            throw new ArgumentOutOfRangeException(
                parameterName,
                $"Images must hold values in [0, 1] (decoded images after clamp(x / 2 + 0.5, 0, 1)); image {at / pixelValues} holds " +
                $"{values[at].ToString("R", CultureInfo.InvariantCulture)} at flat index {at}.");
        }

        return (checked((int)lengths[0]), checked((int)lengths[1]), checked((int)lengths[2]));
    }

    /// <summary>
    /// diffusers' <c>numpy_to_pil</c>: <c>(x * 255).round().astype(uint8)</c> in float32, ties to even. The values must be
    /// in [0, 1] (see <see cref="ValidateImages"/>).
    /// </summary>
    internal static void QuantizeToBytes(ReadOnlySpan<float> values, Span<byte> bytes)
    {
        const int ChunkLength = 512;
        Span<float> scaled = stackalloc float[ChunkLength];
        Span<int> levels = stackalloc int[ChunkLength];
        for (int offset = 0; offset < values.Length; offset += ChunkLength)
        {
            int n = Math.Min(ChunkLength, values.Length - offset);
            TensorPrimitives.Multiply(values.Slice(offset, n), 255f, scaled[..n]);
            TensorPrimitives.Round(scaled[..n], scaled[..n]);

            // Through int: TensorPrimitives vectorises float to int and int to byte, not float to byte directly.
            TensorPrimitives.ConvertTruncating<float, int>(scaled[..n], levels[..n]);
            TensorPrimitives.ConvertTruncating<int, byte>(levels[..n], bytes.Slice(offset, n));
        }
    }

    /// <summary>
    /// Pre-processes validated NHWC values into <paramref name="destination"/>, NCHW of
    /// <see cref="GetOutputSize"/>'s size.
    /// </summary>
    internal void PreprocessValidated(ReadOnlySpan<float> values, int batch, int height, int width, Span<float> destination)
    {
        Plan plan = GetPlan(height, width);
        ImageSize size = plan.Output;
        int imageValues = height * width * Channels;
        int outputValues = Channels * size.Height * size.Width;
        byte[] pixels = ArrayPool<byte>.Shared.Rent(imageValues);
        try
        {
            for (int i = 0; i < batch; i++)
            {
                QuantizeToBytes(values.Slice(i * imageValues, imageValues), pixels.AsSpan(0, imageValues));
                ProcessOne(plan, pixels.AsSpan(0, imageValues), destination.Slice(i * outputValues, outputValues));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(pixels);
        }
    }

    private void ProcessOne(Plan plan, ReadOnlySpan<byte> pixels, Span<float> destination)
    {
        int regionHeight = plan.RegionRowEnd - plan.RegionRow;
        int regionWidth = plan.RegionColumnEnd - plan.RegionColumn;
        int regionLength = Math.Max(0, regionHeight) * Math.Max(0, regionWidth) * Channels;
        byte[] rented = ArrayPool<byte>.Shared.Rent(regionLength);
        try
        {
            Span<byte> region = rented.AsSpan(0, regionLength);
            if (regionLength > 0)
            {
                plan.Resize.ResizeRegion(pixels, plan.RegionRow, plan.RegionRowEnd, plan.RegionColumn, plan.RegionColumnEnd, region);
            }

            WriteLevels(plan, region, regionHeight, regionWidth, destination);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Writes the resized and cropped pixels as NCHW floats, through the per-level lookup table.</summary>
    private void WriteLevels(Plan plan, ReadOnlySpan<byte> region, int regionHeight, int regionWidth, Span<float> destination)
    {
        ImageSize size = plan.Output;
        int planeSize = size.Height * size.Width;
        bool padded = region.Length == 0 || regionHeight != size.Height || regionWidth != size.Width;
        for (int c = 0; c < Channels; c++)
        {
            ReadOnlySpan<float> levels = _levels.AsSpan(c * 256, 256);
            Span<float> plane = destination.Slice(c * planeSize, planeSize);
            if (padded)
            {
                // The centre crop pads with black (level 0) where the image is smaller than the crop.
                plane.Fill(levels[0]);
            }

            for (int r = 0; r < regionHeight && regionWidth > 0; r++)
            {
                Span<float> outputRow = plane.Slice(((plan.OutputRow + r) * size.Width) + plan.OutputColumn, regionWidth);
                ReadOnlySpan<byte> regionRow = region.Slice(r * regionWidth * Channels, regionWidth * Channels);
                for (int x = 0; x < outputRow.Length; x++)
                {
                    outputRow[x] = levels[regionRow[(x * Channels) + c]];
                }
            }
        }
    }

    private Plan GetPlan(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        Plan? last = Volatile.Read(ref _lastPlan);
        if (last is not null && last.Resize.InHeight == height && last.Resize.InWidth == width)
        {
            return last;
        }

        var plan = new Plan(Config, height, width);
        Volatile.Write(ref _lastPlan, plan);
        return plan;
    }

    /// <summary>
    /// The value of every 8-bit level after rescale and normalise, in the backend's float operations. PIL backend (NumPy):
    /// rescale multiplies in double and rounds to float32, then <c>(x - mean) / std</c> in float32. Torchvision backend:
    /// rescale and normalise are fused into <c>(level - mean * (1 / factor)) / (std * (1 / factor))</c> in float32, or
    /// <c>level * factor</c> in float32 without normalisation.
    /// </summary>
    private static float[] BuildLevels(ClipImageProcessorConfig config)
    {
        bool torch = config.Backend == ImageProcessorBackend.Torchvision;
        float[] levels = new float[Channels * 256];
        for (int c = 0; c < Channels; c++)
        {
            float mean = (float)config.ImageMean[c];
            float std = (float)config.ImageStd[c];
            if (torch && config.DoRescale && config.DoNormalize)
            {
                float inverseFactor = (float)(1.0 / config.RescaleFactor);
                mean *= inverseFactor;
                std *= inverseFactor;
            }

            for (int level = 0; level < 256; level++)
            {
                float value = !config.DoRescale ? level
                    : torch && config.DoNormalize ? level
                    : torch ? level * (float)config.RescaleFactor
                    : (float)(level * config.RescaleFactor);
                levels[(c * 256) + level] = config.DoNormalize ? (value - mean) / std : value;
            }
        }

        return levels;
    }

    private static int IndexOfInvalid(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!(values[i] >= 0f && values[i] <= 1f))
            {
                return i;
            }
        }

        return 0;
    }

    private static string FormatShape(ReadOnlySpan<nint> lengths) => $"[{string.Join(", ", lengths.ToArray())}]";

    /// <summary>
    /// The geometry for one input size: the resize, the crop window and the part of the resized image that lands in it.
    /// </summary>
    private sealed class Plan
    {
        public Plan(ClipImageProcessorConfig config, int height, int width)
        {
            ImageSize resized = config.DoResize ? config.Size.GetOutputSize(height, width) : new ImageSize(height, width);
            Resize = new Uint8Resize(height, width, resized.Height, resized.Width, config.Resample, config.Backend);
            Output = config.DoCenterCrop ? config.CropSize : resized;

            // The crop starts (size - crop) / 2 into the image; where the crop is larger than the image, the image lands at
            // -top and the rest is zero padding. Odd margins round down with NumPy's floor division on the PIL backend
            // and toward zero (torchvision pads floor((crop - size) / 2) before) on the torchvision backend.
            (int top, int left) = config.Backend == ImageProcessorBackend.Pil
                ? ((resized.Height - Output.Height) >> 1, (resized.Width - Output.Width) >> 1)
                : ((resized.Height - Output.Height) / 2, (resized.Width - Output.Width) / 2);
            RegionRow = Math.Max(0, top);
            RegionRowEnd = Math.Min(resized.Height, top + Output.Height);
            RegionColumn = Math.Max(0, left);
            RegionColumnEnd = Math.Min(resized.Width, left + Output.Width);
            OutputRow = RegionRow - top;
            OutputColumn = RegionColumn - left;
        }

        public Uint8Resize Resize { get; }

        public ImageSize Output { get; }

        /// <summary>The rows [RegionRow, RegionRowEnd) and columns of the resized image that the crop keeps.</summary>
        public int RegionRow { get; }

        public int RegionRowEnd { get; }

        public int RegionColumn { get; }

        public int RegionColumnEnd { get; }

        /// <summary>Where the kept region starts in the output.</summary>
        public int OutputRow { get; }

        public int OutputColumn { get; }
    }
}
