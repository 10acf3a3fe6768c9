using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Safety.Tests.Preprocessing;

[Trait("Area", "Safety")]
public sealed class ClipImageProcessorConfigTests
{
    private const string Source = "/models/sd15/feature_extractor/preprocessor_config.json";

    // As published with Stable Diffusion 1.5 (and in the tiny fixture).
    private const string Sd15 = """
        {
          "crop_size": { "height": 224, "width": 224 },
          "do_center_crop": true,
          "do_convert_rgb": true,
          "do_normalize": true,
          "do_rescale": true,
          "do_resize": true,
          "image_mean": [0.48145466, 0.4578275, 0.40821073],
          "image_processor_type": "CLIPImageProcessor",
          "image_std": [0.26862954, 0.26130258, 0.27577711],
          "resample": 3,
          "rescale_factor": 0.00392156862745098,
          "size": { "shortest_edge": 224 }
        }
        """;

    // The older CLIPFeatureExtractor format of the first SD 1.x uploads: integer sizes, no rescale or RGB keys.
    private const string LegacyFeatureExtractor = """
        {
          "crop_size": 224,
          "do_center_crop": true,
          "do_normalize": true,
          "do_resize": true,
          "feature_extractor_type": "CLIPFeatureExtractor",
          "image_mean": [0.48145466, 0.4578275, 0.40821073],
          "image_std": [0.26862954, 0.26130258, 0.27577711],
          "resample": 3,
          "size": 224
        }
        """;

    [Fact]
    public void Parse_Sd15Config_ReadsEveryKey()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse(Sd15, Source);

        Assert.True(config.DoConvertRgb);
        Assert.True(config.DoResize);
        Assert.Equal(224, config.Size.ShortestEdge);
        Assert.Null(config.Size.Size);
        Assert.Equal(PilResampling.Bicubic, config.Resample);
        Assert.True(config.DoCenterCrop);
        Assert.Equal(new ImageSize(224, 224), config.CropSize);
        Assert.True(config.DoRescale);
        Assert.Equal(1.0 / 255, config.RescaleFactor);
        Assert.True(config.DoNormalize);
        Assert.Equal([0.48145466, 0.4578275, 0.40821073], config.ImageMean);
        Assert.Equal([0.26862954, 0.26130258, 0.27577711], config.ImageStd);
        Assert.Equal(ImageProcessorBackend.Torchvision, config.Backend);
        Assert.Equal(Source, config.Source);
    }

    [Fact]
    public void Default_EqualsTheSd15Config()
    {
        ClipImageProcessorConfig parsed = ClipImageProcessorConfig.Parse(Sd15);
        ClipImageProcessorConfig defaults = ClipImageProcessorConfig.Default;

        Assert.Equal(defaults.Size, parsed.Size);
        Assert.Equal(defaults.CropSize, parsed.CropSize);
        Assert.Equal(defaults.Resample, parsed.Resample);
        Assert.Equal(defaults.RescaleFactor, parsed.RescaleFactor);
        Assert.Equal(defaults.ImageMean, parsed.ImageMean);
        Assert.Equal(defaults.ImageStd, parsed.ImageStd);
    }

    [Fact]
    public void Load_FixtureConfig_IsTheSd15Config()
    {
        Fixtures.Require();
        string path = Path.Combine(Fixtures.TinyModel, "feature_extractor", "preprocessor_config.json");

        ClipImageProcessorConfig config = ClipImageProcessorConfig.Load(path);

        Assert.Equal(ResizeTarget.ToShortestEdge(224), config.Size);
        Assert.Equal(new ImageSize(224, 224), config.CropSize);
        Assert.Equal(ClipImageProcessorConfig.OpenAiClipMean, config.ImageMean);
        Assert.Equal(path, config.Source);
    }

    [Fact]
    public void Parse_LegacyFeatureExtractorKeys_MeanTheSameAsTheCurrentOnes()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse(LegacyFeatureExtractor, Source);

        Assert.Equal(ResizeTarget.ToShortestEdge(224), config.Size); // an int size is a shortest edge
        Assert.Equal(new ImageSize(224, 224), config.CropSize);      // an int crop size is a square
        Assert.True(config.DoRescale);
        Assert.Equal(1.0 / 255, config.RescaleFactor);
        Assert.True(config.DoConvertRgb);
    }

    [Fact]
    public void Parse_ListSizes_AreHeightThenWidth()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse("""{ "size": [240, 320], "crop_size": [200, 300] }""");

        Assert.Equal(ResizeTarget.ToSize(240, 320), config.Size);
        Assert.Equal(new ImageSize(200, 300), config.CropSize);
    }

    [Fact]
    public void Parse_HeightWidthSize_IsAnExactResize()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse("""{ "size": { "width": 300, "height": 200 } }""");

        Assert.Equal(new ImageSize(200, 300), config.Size.Size);
        Assert.Null(config.Size.ShortestEdge);
    }

    [Fact]
    public void Parse_NullKeysAndMissingKeys_TakeTheDefaults()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse("""{ "size": null, "do_resize": null, "image_mean": null }""");

        Assert.Equal(ClipImageProcessorConfig.Default.Size, config.Size);
        Assert.True(config.DoResize);
        Assert.Equal(ClipImageProcessorConfig.OpenAiClipMean, config.ImageMean);
    }

    [Fact]
    public void Parse_SingleMeanAndStd_ApplyToEveryChannel()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse("""{ "image_mean": 0.5, "image_std": 0.25 }""");

        Assert.Equal([0.5, 0.5, 0.5], config.ImageMean);
        Assert.Equal([0.25, 0.25, 0.25], config.ImageStd);
    }

    [Fact]
    public void Parse_IgnoresKeysThatDoNotAffectClipPreprocessing()
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse(
            """{ "image_processor_type": "CLIPImageProcessorFast", "processor_class": "CLIPProcessor", "_comment": 1 }""");

        Assert.Equal(ClipImageProcessorConfig.Default.Size, config.Size);
    }

    [Theory]
    [InlineData("""{ "size": 224, """, "not valid JSON")]
    [InlineData("""[1, 2, 3]""", "must be a JSON object")]
    [InlineData("""{ "size": { "shortest_edge": 224, "height": 224 } }""", "\"size\" has the keys {height, shortest_edge}")]
    [InlineData("""{ "size": { "shortest_edge": 224, "longest_edge": 448 } }""", "\"size\" has the keys {longest_edge, shortest_edge}")]
    [InlineData("""{ "size": "224" }""", "\"size\" must be an integer")]
    [InlineData("""{ "size": 0 }""", "\"size\" must be a positive integer")]
    [InlineData("""{ "size": { "shortest_edge": 22.5 } }""", "\"size.shortest_edge\" must be a positive integer")]
    [InlineData("""{ "size": [224] }""", "\"size\" must be a [height, width] list")]
    [InlineData("""{ "crop_size": { "shortest_edge": 224 } }""", "\"crop_size\" has the keys {shortest_edge}")]
    [InlineData("""{ "crop_size": { "height": -1, "width": 224 } }""", "\"crop_size.height\" must be a positive integer")]
    [InlineData("""{ "resample": 9 }""", "\"resample\" must be a Pillow filter code")]
    [InlineData("""{ "resample": "bicubic" }""", "\"resample\" must be a Pillow filter code")]
    [InlineData("""{ "do_resize": "yes" }""", "\"do_resize\" must be true or false")]
    [InlineData("""{ "rescale_factor": 0 }""", "\"rescale_factor\" (RescaleFactor) must be a positive number")]
    [InlineData("""{ "rescale_factor": "1/255" }""", "\"rescale_factor\" must be a number")]
    [InlineData("""{ "image_mean": [0.5, 0.5] }""", "\"image_mean\" (ImageMean) must hold 3 values")]
    [InlineData("""{ "image_mean": ["r", "g", "b"] }""", "\"image_mean\" must be a list of 3 numbers")]
    [InlineData("""{ "image_std": [0.26, 0, 0.27] }""", "\"image_std\"[1] (ImageStd) is 0; it must be a positive number")]
    public void Parse_InvalidConfig_ThrowsNamingTheFileAndTheKey(string json, string expected)
    {
        var ex = Assert.Throws<PreprocessorConfigException>(() => ClipImageProcessorConfig.Parse(json, Source));

        Assert.Contains(Source, ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_ThrowsFileNotFound()
    {
        string path = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}", "preprocessor_config.json");

        var ex = Assert.Throws<FileNotFoundException>(() => ClipImageProcessorConfig.Load(path));

        Assert.Equal(path, ex.FileName);
    }

    [Theory]
    [InlineData(PilResampling.Bilinear)]
    [InlineData(PilResampling.Nearest)]
    [InlineData(PilResampling.Box)]
    [InlineData(PilResampling.Hamming)]
    public void Processor_TorchvisionBackend_RejectsFiltersItDoesNotReproduce(PilResampling filter)
    {
        ClipImageProcessorConfig config = ClipImageProcessorConfig.Parse($$"""{ "resample": {{(int)filter}} }""", Source);

        var ex = Assert.Throws<PreprocessorConfigException>(() => new ClipImageProcessor(config));

        Assert.Contains(Source, ex.Message, StringComparison.Ordinal);
        Assert.Contains("\"resample\"", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ImageProcessorBackend.Pil", ex.Message, StringComparison.Ordinal);
        _ = new ClipImageProcessor(config with { Backend = ImageProcessorBackend.Pil });
    }

    [Fact]
    public void Processor_InvalidConfigBuiltInCode_ThrowsNamingTheProperty()
    {
        var config = new ClipImageProcessorConfig { ImageStd = [0.2, 0.2, -1] };

        var ex = Assert.Throws<PreprocessorConfigException>(() => new ClipImageProcessor(config));

        Assert.Contains("ImageStd", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(64, 96, 224, 336)]
    [InlineData(96, 64, 336, 224)]
    [InlineData(512, 512, 224, 224)]
    [InlineData(768, 512, 336, 224)]
    [InlineData(333, 517, 224, 347)] // 224 * 517 / 333 = 347.76..., truncated
    [InlineData(517, 333, 347, 224)]
    [InlineData(1, 1000, 224, 224000)]
    public void ShortestEdge_KeepsTheAspectRatioAndTruncatesTheLongSide(int height, int width, int expectedHeight, int expectedWidth)
    {
        Assert.Equal(new ImageSize(expectedHeight, expectedWidth), ResizeTarget.ToShortestEdge(224).GetOutputSize(height, width));
    }
}
