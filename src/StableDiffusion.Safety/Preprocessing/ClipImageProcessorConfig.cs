using System.Globalization;
using System.Text.Json;

namespace StableDiffusion.Safety;

/// <summary>
/// The settings of transformers' <c>CLIPImageProcessor</c> as a model stores them in
/// <c>feature_extractor/preprocessor_config.json</c>. The defaults are those of the class, which are also the values the
/// Stable Diffusion 1.x checkpoints ship: resize the shortest edge to 224 with Pillow's bicubic filter, centre-crop
/// 224 x 224, rescale by 1/255 and normalise with OpenAI CLIP's mean and standard deviation.
/// </summary>
/// <remarks>
/// <see cref="Load"/> also reads the legacy <c>CLIPFeatureExtractor</c> files: <c>size</c> and <c>crop_size</c> as plain
/// integers or <c>[height, width]</c> lists, and missing <c>do_rescale</c>, <c>rescale_factor</c> or
/// <c>do_convert_rgb</c> keys (which take the defaults). A key set to <c>null</c> takes its default too. Keys that do not
/// affect CLIP pre-processing (<c>image_processor_type</c>, <c>feature_extractor_type</c>, <c>processor_class</c>, ...)
/// are ignored, as transformers ignores them when <c>CLIPImageProcessor.from_pretrained</c> reads the file.
/// </remarks>
public sealed record ClipImageProcessorConfig
{
    /// <summary>OpenAI CLIP's per-channel mean (<c>OPENAI_CLIP_MEAN</c>), not ImageNet's.</summary>
    public static IReadOnlyList<double> OpenAiClipMean { get; } = [0.48145466, 0.4578275, 0.40821073];

    /// <summary>OpenAI CLIP's per-channel standard deviation (<c>OPENAI_CLIP_STD</c>), not ImageNet's.</summary>
    public static IReadOnlyList<double> OpenAiClipStd { get; } = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>The class defaults, identical to the Stable Diffusion 1.x <c>preprocessor_config.json</c>.</summary>
    public static ClipImageProcessorConfig Default { get; } = new();

    /// <summary>Whether images are converted to RGB first (<c>do_convert_rgb</c>); the inputs here are RGB already.</summary>
    public bool DoConvertRgb { get; init; } = true;

    /// <summary>Whether images are resized (<c>do_resize</c>).</summary>
    public bool DoResize { get; init; } = true;

    /// <summary>The resize target (<c>size</c>): <c>{"shortest_edge": 224}</c> by default.</summary>
    public ResizeTarget Size { get; init; } = ResizeTarget.ToShortestEdge(224);

    /// <summary>The Pillow filter used to resize (<c>resample</c>): bicubic (3) by default.</summary>
    public PilResampling Resample { get; init; } = PilResampling.Bicubic;

    /// <summary>Whether images are centre-cropped after resizing (<c>do_center_crop</c>).</summary>
    public bool DoCenterCrop { get; init; } = true;

    /// <summary>The centre-crop size (<c>crop_size</c>): 224 x 224 by default.</summary>
    public ImageSize CropSize { get; init; } = new(224, 224);

    /// <summary>Whether 8-bit values are multiplied by <see cref="RescaleFactor"/> (<c>do_rescale</c>).</summary>
    public bool DoRescale { get; init; } = true;

    /// <summary>The rescale factor (<c>rescale_factor</c>): 1/255 by default.</summary>
    public double RescaleFactor { get; init; } = 1.0 / 255;

    /// <summary>Whether values are normalised with <see cref="ImageMean"/> and <see cref="ImageStd"/> (<c>do_normalize</c>).</summary>
    public bool DoNormalize { get; init; } = true;

    /// <summary>The per-channel (R, G, B) mean subtracted when normalising (<c>image_mean</c>).</summary>
    public IReadOnlyList<double> ImageMean { get; init; } = OpenAiClipMean;

    /// <summary>The per-channel (R, G, B) standard deviation divided by when normalising (<c>image_std</c>).</summary>
    public IReadOnlyList<double> ImageStd { get; init; } = OpenAiClipStd;

    /// <summary>
    /// Which transformers implementation to reproduce: <see cref="ImageProcessorBackend.Torchvision"/> (the default:
    /// transformers 5 with torchvision, and the diffusers reference) or <see cref="ImageProcessorBackend.Pil"/>
    /// (transformers 4, or transformers 5 without torchvision). Not stored in <c>preprocessor_config.json</c>.
    /// </summary>
    public ImageProcessorBackend Backend { get; init; } = ImageProcessorBackend.Torchvision;

    /// <summary>The file this configuration was read from, if any; error messages name it.</summary>
    public string? Source { get; init; }

    /// <summary>Reads a <c>preprocessor_config.json</c> file.</summary>
    /// <param name="path">The path of the JSON file, usually <c>feature_extractor/preprocessor_config.json</c>.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="PreprocessorConfigException">The file is not a valid CLIP image processor configuration.</exception>
    public static ClipImageProcessorConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"Feature extractor configuration '{path}' does not exist. Stable Diffusion models keep it in feature_extractor/preprocessor_config.json.",
                path);
        }

        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses the JSON text of a <c>preprocessor_config.json</c>.</summary>
    /// <param name="json">The JSON object text.</param>
    /// <param name="source">Where the text came from, for error messages.</param>
    /// <exception cref="PreprocessorConfigException">The text is not a valid CLIP image processor configuration.</exception>
    public static ClipImageProcessorConfig Parse(string json, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        string where = Describe(source);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new PreprocessorConfigException($"{where} is not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new PreprocessorConfigException($"{where} must be a JSON object, not {root.ValueKind}.");
            }

            var reader = new Reader(root, where);
            ClipImageProcessorConfig defaults = Default;
            var config = new ClipImageProcessorConfig
            {
                DoConvertRgb = reader.Boolean("do_convert_rgb") ?? defaults.DoConvertRgb,
                DoResize = reader.Boolean("do_resize") ?? defaults.DoResize,
                Size = reader.Resize("size") ?? defaults.Size,
                Resample = reader.Resampling("resample") ?? defaults.Resample,
                DoCenterCrop = reader.Boolean("do_center_crop") ?? defaults.DoCenterCrop,
                CropSize = reader.Crop("crop_size") ?? defaults.CropSize,
                DoRescale = reader.Boolean("do_rescale") ?? defaults.DoRescale,
                RescaleFactor = reader.Number("rescale_factor") ?? defaults.RescaleFactor,
                DoNormalize = reader.Boolean("do_normalize") ?? defaults.DoNormalize,
                ImageMean = reader.PerChannel("image_mean") ?? defaults.ImageMean,
                ImageStd = reader.PerChannel("image_std") ?? defaults.ImageStd,
                Source = source,
            };
            config.Validate();
            return config;
        }
    }

    /// <summary>Checks that the values are usable together.</summary>
    /// <exception cref="PreprocessorConfigException">A value is out of range; the message names the key and the file.</exception>
    internal void Validate()
    {
        string where = Describe(Source);
        if (Size is null)
        {
            throw new PreprocessorConfigException($"{where}: \"size\" ({nameof(Size)}) is missing; set a shortest edge or a height and width.");
        }

        if (!Enum.IsDefined(Resample))
        {
            throw new PreprocessorConfigException($"{where}: \"resample\" ({nameof(Resample)}) is {(int)Resample}; Pillow's filters are 0 (nearest) to 5 (hamming).");
        }

        if (!Enum.IsDefined(Backend))
        {
            throw new PreprocessorConfigException($"{where}: {nameof(Backend)} is {(int)Backend}, which is not an {nameof(ImageProcessorBackend)}.");
        }

        if (CropSize.Height < 1 || CropSize.Width < 1)
        {
            throw new PreprocessorConfigException($"{where}: \"crop_size\" ({nameof(CropSize)}) must be positive, got {CropSize}.");
        }

        if (!double.IsFinite(RescaleFactor) || RescaleFactor <= 0)
        {
            throw new PreprocessorConfigException($"{where}: \"rescale_factor\" ({nameof(RescaleFactor)}) must be a positive number, got {RescaleFactor.ToString(CultureInfo.InvariantCulture)}.");
        }

        ValidatePerChannel(ImageMean, "image_mean", nameof(ImageMean), where, mustBePositive: false);
        ValidatePerChannel(ImageStd, "image_std", nameof(ImageStd), where, mustBePositive: true);
    }

    /// <summary>Checks that <see cref="Backend"/> can reproduce <see cref="Resample"/>.</summary>
    /// <exception cref="PreprocessorConfigException">The torchvision backend was asked for a filter it does not reproduce.</exception>
    internal void ValidateBackend()
    {
        string where = Describe(Source);
        if (DoResize && Backend == ImageProcessorBackend.Torchvision && Resample is not (PilResampling.Bicubic or PilResampling.Lanczos))
        {
            throw new PreprocessorConfigException(
                $"{where}: \"resample\" ({nameof(Resample)}) is {(int)Resample} ({Resample}), which the torchvision backend does not reproduce " +
                $"(torch resizes uint8 images with it in a way that depends on the CPU, or not at all); set {nameof(Backend)} to " +
                $"{nameof(ImageProcessorBackend)}.{nameof(ImageProcessorBackend.Pil)} to get Pillow's filter, as transformers' PIL backend does.");
        }
    }

    private static void ValidatePerChannel(IReadOnlyList<double>? values, string key, string property, string where, bool mustBePositive)
    {
        if (values is null || values.Count != 3)
        {
            throw new PreprocessorConfigException(
                $"{where}: \"{key}\" ({property}) must hold 3 values (R, G, B), got {(values is null ? "none" : values.Count.ToString(CultureInfo.InvariantCulture))}.");
        }

        for (int i = 0; i < values.Count; i++)
        {
            double v = values[i];
            if (!double.IsFinite(v) || (mustBePositive && v <= 0))
            {
                throw new PreprocessorConfigException(
                    $"{where}: \"{key}\"[{i}] ({property}) is {v.ToString(CultureInfo.InvariantCulture)}; it must be {(mustBePositive ? "a positive" : "a finite")} number.");
            }
        }
    }

    private static string Describe(string? source) =>
        source is null ? "The preprocessor configuration" : $"Preprocessor configuration '{source}'";

    /// <summary>Typed reads of the keys, with messages that name the file, the key and what it should be.</summary>
    private readonly struct Reader(JsonElement root, string where)
    {
        public bool? Boolean(string key) => Get(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            JsonElement other => throw Invalid(key, "true or false", other),
        };

        public double? Number(string key) => Get(key) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Number } n => n.GetDouble(),
            JsonElement other => throw Invalid(key, "a number", other),
        };

        public PilResampling? Resampling(string key)
        {
            if (Get(key) is not { } value)
            {
                return null;
            }

            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int code) || !Enum.IsDefined((PilResampling)code))
            {
                throw Invalid(key, "a Pillow filter code: 0 (nearest), 1 (lanczos), 2 (bilinear), 3 (bicubic), 4 (box) or 5 (hamming)", value);
            }

            return (PilResampling)code;
        }

        /// <summary>transformers' <c>get_size_dict(size, default_to_square=False)</c>: an int is a shortest edge.</summary>
        public ResizeTarget? Resize(string key)
        {
            if (Get(key) is not { } value)
            {
                return null;
            }

            switch (value.ValueKind)
            {
                case JsonValueKind.Number:
                    return ResizeTarget.ToShortestEdge(PositiveInt(key, value));
                case JsonValueKind.Array:
                    ImageSize pair = HeightWidthList(key, value);
                    return ResizeTarget.ToSize(pair.Height, pair.Width);
                case JsonValueKind.Object:
                    string[] keys = [.. value.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];
                    if (keys is ["shortest_edge"])
                    {
                        return ResizeTarget.ToShortestEdge(PositiveInt($"{key}.shortest_edge", value.GetProperty("shortest_edge")));
                    }

                    if (keys is ["height", "width"])
                    {
                        return ResizeTarget.ToSize(
                            PositiveInt($"{key}.height", value.GetProperty("height")),
                            PositiveInt($"{key}.width", value.GetProperty("width")));
                    }

                    throw new PreprocessorConfigException(
                        $"{where}: \"{key}\" has the keys {{{string.Join(", ", keys)}}}; a CLIP image processor takes either {{\"shortest_edge\"}} or {{\"height\", \"width\"}}.");
                default:
                    throw Invalid(key, "an integer, a [height, width] list or an object with \"shortest_edge\" or \"height\" and \"width\"", value);
            }
        }

        /// <summary>transformers' <c>get_size_dict(crop_size, default_to_square=True)</c>: an int is a square.</summary>
        public ImageSize? Crop(string key)
        {
            if (Get(key) is not { } value)
            {
                return null;
            }

            switch (value.ValueKind)
            {
                case JsonValueKind.Number:
                    int side = PositiveInt(key, value);
                    return new ImageSize(side, side);
                case JsonValueKind.Array:
                    return HeightWidthList(key, value);
                case JsonValueKind.Object:
                    string[] keys = [.. value.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];
                    if (keys is not ["height", "width"])
                    {
                        throw new PreprocessorConfigException(
                            $"{where}: \"{key}\" has the keys {{{string.Join(", ", keys)}}}; a centre crop needs exactly {{\"height\", \"width\"}}.");
                    }

                    return new ImageSize(PositiveInt($"{key}.height", value.GetProperty("height")), PositiveInt($"{key}.width", value.GetProperty("width")));
                default:
                    throw Invalid(key, "an integer, a [height, width] list or an object with \"height\" and \"width\"", value);
            }
        }

        /// <summary>A number for every channel, or one number that applies to all three (as transformers allows).</summary>
        public IReadOnlyList<double>? PerChannel(string key)
        {
            if (Get(key) is not { } value)
            {
                return null;
            }

            if (value.ValueKind == JsonValueKind.Number)
            {
                double v = value.GetDouble();
                return [v, v, v];
            }

            if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number))
            {
                throw Invalid(key, "a list of 3 numbers (R, G, B)", value);
            }

            return [.. value.EnumerateArray().Select(e => e.GetDouble())];
        }

        private JsonElement? Get(string key) =>
            root.TryGetProperty(key, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;

        private ImageSize HeightWidthList(string key, JsonElement value)
        {
            if (value.GetArrayLength() != 2)
            {
                throw Invalid(key, "a [height, width] list of 2 integers", value);
            }

            return new ImageSize(PositiveInt($"{key}[0]", value[0]), PositiveInt($"{key}[1]", value[1]));
        }

        private int PositiveInt(string key, JsonElement value) =>
            value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) && n >= 1 ? n : throw Invalid(key, "a positive integer", value);

        private PreprocessorConfigException Invalid(string key, string expected, JsonElement got) =>
            new($"{where}: \"{key}\" must be {expected}, got {got.GetRawText()}.");
    }
}
