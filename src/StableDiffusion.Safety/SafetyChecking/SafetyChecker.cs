using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Safety;

/// <summary>
/// The Stable Diffusion safety checker on ONNX Runtime: the <c>safety_checker/model.onnx</c> graph diffusers exports,
/// fed with CLIP pre-processing exactly as the model's <c>feature_extractor/preprocessor_config.json</c> says. Images the
/// checker flags come back black (all zeros) with their flag set, as in diffusers. A graph that takes <c>clip_input</c>
/// alone and returns <c>has_nsfw_concepts</c> alone (what the SDK builds from diffusers weights) works the same way.
/// </summary>
/// <remarks>
/// <para>
/// Like diffusers' <c>OnnxStableDiffusionPipeline</c>, the graph runs once per image with a batch of one, so the result
/// does not depend on the batch size and graphs exported with a fixed batch of one work too. Inputs and outputs are bound
/// by name; float16 graphs get float16 inputs, converted at the boundary. The flags come from the graph's
/// <c>has_nsfw_concepts</c>; the flagged images are zeroed here, which equals the graph's own <c>out_images</c> without
/// rounding float32 images through float16.
/// </para>
/// <para>
/// Thread safety: <see cref="Check(ReadOnlyTensorSpan{float}, CancellationToken)"/> and the other checks may be called
/// from several threads at once (ONNX Runtime's <c>InferenceSession.Run</c> is thread-safe and a check keeps no shared
/// state). <see cref="Dispose"/> must not run while a check is in progress.
/// </para>
/// </remarks>
public sealed class SafetyChecker : IDisposable
{
    /// <summary>The graph input holding the CLIP pre-processed images, NCHW.</summary>
    public const string ClipInputName = "clip_input";

    /// <summary>The graph input holding the decoded images, NHWC in [0, 1] (diffusers' export; a graph that gives the
    /// verdict alone does not take it).</summary>
    public const string ImagesInputName = "images";

    /// <summary>The graph output holding the images with flagged ones zeroed (with <see cref="ImagesInputName"/>).</summary>
    public const string OutputImagesName = "out_images";

    /// <summary>The graph output holding one boolean flag per image.</summary>
    public const string HasNsfwConceptsName = "has_nsfw_concepts";

    private static readonly string[] OutputNames = [HasNsfwConceptsName];

    private readonly InferenceSession _session;
    private readonly bool _ownsSession;
    private readonly SafetyCheckerSignature _signature;
    private readonly string[] _inputNames;
    private readonly string _where;
    private int _disposed;

    /// <summary>
    /// Wraps a session the caller created, for instance with its own execution provider (the safety checker often runs
    /// on the CPU while the UNet runs on a GPU).
    /// </summary>
    /// <param name="session">A session over a diffusers safety checker graph.</param>
    /// <param name="featureExtractor">The model's CLIP pre-processing, usually <see cref="ClipImageProcessor.Load"/> of its <c>preprocessor_config.json</c>.</param>
    /// <param name="ownsSession">Whether <see cref="Dispose"/> disposes <paramref name="session"/>. If this constructor throws, the caller still owns it.</param>
    /// <param name="modelPath">The path of the graph, for error messages.</param>
    /// <exception cref="SafetyCheckerModelException">The graph's inputs and outputs are not those of a safety checker.</exception>
    public SafetyChecker(InferenceSession session, ClipImageProcessor featureExtractor, bool ownsSession = false, string? modelPath = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(featureExtractor);
        _where = modelPath is null ? "The safety checker graph" : $"Safety checker graph '{modelPath}'";
        _signature = SafetyCheckerSignature.Read(session, _where, modelPath);
        _inputNames = _signature.TakesImages ? [ClipInputName, ImagesInputName] : [ClipInputName];
        CheckClipSize(featureExtractor.Config, modelPath);
        _session = session;
        _ownsSession = ownsSession;
        FeatureExtractor = featureExtractor;
        ModelPath = modelPath;
    }

    /// <summary>The CLIP pre-processing that turns images into the graph's <c>clip_input</c> (diffusers' <c>feature_extractor</c>).</summary>
    public ClipImageProcessor FeatureExtractor { get; }

    /// <summary>The path of the graph, if known.</summary>
    public string? ModelPath { get; }

    /// <summary>Loads a model's safety checker and its CLIP pre-processing on its own, for use without a pipeline.</summary>
    /// <param name="safetyCheckerModelPath">The graph, usually <c>safety_checker/model.onnx</c>.</param>
    /// <param name="preprocessorConfigPath">The pre-processing settings, usually <c>feature_extractor/preprocessor_config.json</c>.</param>
    /// <param name="options">ONNX Runtime session options (execution provider, threads); null for ONNX Runtime's defaults (CPU).</param>
    /// <returns>A checker that owns its session.</returns>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="PreprocessorConfigException">The pre-processing settings are invalid.</exception>
    /// <exception cref="SafetyCheckerModelException">The graph cannot be loaded or is not a safety checker.</exception>
    public static SafetyChecker Load(string safetyCheckerModelPath, string preprocessorConfigPath, SessionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(safetyCheckerModelPath);
        ArgumentException.ThrowIfNullOrEmpty(preprocessorConfigPath);
        RequireModelFile(safetyCheckerModelPath);
        return Load(safetyCheckerModelPath, ClipImageProcessor.Load(preprocessorConfigPath), options);
    }

    /// <summary>
    /// Loads a safety checker graph with pre-processing of your choice, for instance
    /// <see cref="ImageProcessorBackend.Pil"/> to match diffusers on transformers 4.
    /// </summary>
    /// <param name="safetyCheckerModelPath">The graph, usually <c>safety_checker/model.onnx</c>.</param>
    /// <param name="featureExtractor">The CLIP pre-processing.</param>
    /// <param name="options">ONNX Runtime session options (execution provider, threads); null for ONNX Runtime's defaults (CPU).</param>
    /// <returns>A checker that owns its session.</returns>
    /// <exception cref="FileNotFoundException">The graph does not exist.</exception>
    /// <exception cref="SafetyCheckerModelException">The graph cannot be loaded or is not a safety checker.</exception>
    public static SafetyChecker Load(string safetyCheckerModelPath, ClipImageProcessor featureExtractor, SessionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(safetyCheckerModelPath);
        ArgumentNullException.ThrowIfNull(featureExtractor);
        RequireModelFile(safetyCheckerModelPath);
        InferenceSession session;
        try
        {
            session = options is null ? new InferenceSession(safetyCheckerModelPath) : new InferenceSession(safetyCheckerModelPath, options);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new SafetyCheckerModelException(
                $"Safety checker model '{safetyCheckerModelPath}' could not be loaded by ONNX Runtime: {ex.Message}", safetyCheckerModelPath, ex);
        }

        try
        {
            return new SafetyChecker(session, featureExtractor, ownsSession: true, safetyCheckerModelPath);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks decoded images, as diffusers does after the VAE: every image the checker flags comes back all zeros.
    /// </summary>
    /// <param name="images">Dense NHWC floats in [0, 1]: [batch, height, width, 3], RGB.</param>
    /// <param name="cancellationToken">Stops the check, also within a run of the graph.</param>
    /// <returns>The images (a new tensor; the input is not modified) and one flag per image.</returns>
    /// <exception cref="ArgumentException">The tensor is not [batch, height, width, 3], is empty, or is not dense.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value is NaN or outside [0, 1].</exception>
    /// <exception cref="SafetyCheckerModelException">The graph failed or answered with something other than one flag per image.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The checker was disposed.</exception>
    public SafetyCheckerResult Check(ReadOnlyTensorSpan<float> images, CancellationToken cancellationToken = default)
    {
        (int batch, int height, int width) = Validate(images);
        return CheckCopy(images.AsSpan(), batch, height, width, cancellationToken);
    }

    /// <summary>
    /// Checks decoded images on the thread pool; see <see cref="Check(ReadOnlyTensorSpan{float}, CancellationToken)"/>.
    /// </summary>
    /// <param name="images">Dense NHWC floats in [0, 1]: [batch, height, width, 3]. It must not change until the task completes.</param>
    /// <param name="cancellationToken">Stops the check, also within a run of the graph.</param>
    /// <returns>The images with flagged ones zeroed, and one flag per image.</returns>
    /// <exception cref="ArgumentException">The tensor is not [batch, height, width, 3], is empty, or is not dense.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value is NaN or outside [0, 1].</exception>
    /// <exception cref="ObjectDisposedException">The checker was disposed.</exception>
    public Task<SafetyCheckerResult> CheckAsync(Tensor<float> images, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(images);
        (int batch, int height, int width) = Validate(images);
        return Task.Run(() => CheckCopy(images.AsSpan(), batch, height, width, cancellationToken), cancellationToken);
    }

    /// <summary>Checks one 8-bit RGB picture, for use of this package on its own. The pixels are not modified.</summary>
    /// <param name="rgb">The picture's pixels: <paramref name="height"/> rows of <paramref name="width"/> × 3 bytes (R, G, B),
    /// top row first, no padding (what an image library's RGB24 pixel buffer holds).</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <param name="cancellationToken">Stops the check, also within a run of the graph.</param>
    /// <returns>True where the checker flags the picture; diffusers would return it black.</returns>
    /// <exception cref="ArgumentException">The byte count is not width × height × 3.</exception>
    /// <exception cref="SafetyCheckerModelException">The graph failed or answered unexpectedly.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The checker was disposed.</exception>
    public bool HasNsfwConcept(ReadOnlySpan<byte> rgb, int width, int height, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ClipImageProcessor.ValidatePixels(rgb, width, height, nameof(rgb));
        CheckImageSize(height, width);

        // level / 255 quantises back to the same level in numpy_to_pil, so the CLIP input is the picture's own.
        // The values are this call's own, so the check runs on them in place.
        float[] values = new float[rgb.Length];
        TensorPrimitives.ConvertTruncating<byte, float>(rgb, values);
        TensorPrimitives.Divide(values, 255f, values);
        return CheckInPlace(values, 1, height, width, cancellationToken)[0];
    }

    /// <summary>Disposes the session if this checker owns it. Must not run while a check is in progress.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _ownsSession)
        {
            _session.Dispose();
        }
    }

    /// <summary>The checks every call makes before it starts: not disposed, a valid batch, a size the graph takes.</summary>
    private (int Batch, int Height, int Width) Validate(ReadOnlyTensorSpan<float> images)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        (int batch, int height, int width) = ClipImageProcessor.ValidateImages(images, nameof(images));
        CheckImageSize(height, width);
        return (batch, height, width);
    }

    /// <summary>Checks a copy of the caller's images, which are never modified.</summary>
    private SafetyCheckerResult CheckCopy(ReadOnlySpan<float> images, int batch, int height, int width, CancellationToken cancellationToken)
    {
        float[] output = images.ToArray();
        bool[] flags = CheckInPlace(output, batch, height, width, cancellationToken);
        return new SafetyCheckerResult(Tensor.Create(output, [batch, height, width, 3]), flags);
    }

    /// <summary>Checks validated images [batch, height, width, 3], blacking out the flagged ones in place.</summary>
    private bool[] CheckInPlace(Memory<float> images, int batch, int height, int width, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ImageSize clipSize = FeatureExtractor.GetOutputSize(height, width);
        int imageLength = height * width * 3;
        int clipLength = 3 * clipSize.Height * clipSize.Width;
        long[] imageShape = [1, height, width, 3];
        long[] clipShape = [1, 3, clipSize.Height, clipSize.Width];
        var flags = new bool[batch];

        // diffusers runs the graph image by image; so does this. The images of a batch are pre-processed first, side by side
        // on the thread pool (the resize is most of a check's host time: several milliseconds an image on a GPU machine).
        float[] clipInputs = ArrayPool<float>.Shared.Rent(batch * clipLength);
        Float16[]? clipHalf = _signature.ClipInputType == TensorElementType.Float16 ? new Float16[clipLength] : null;
        Float16[]? imageHalf = _signature.ImagesType == TensorElementType.Float16 ? new Float16[imageLength] : null;
        using var runOptions = new RunOptions();
        using CancellationTokenRegistration registration = cancellationToken.Register(static state => ((RunOptions)state!).Terminate = true, runOptions);
        var inputs = new OrtValue[_inputNames.Length];
        try
        {
            Preprocess(images, clipInputs, clipLength, batch, height, width, cancellationToken);
            for (int i = 0; i < batch; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Memory<float> image = images.Slice(i * imageLength, imageLength);
                try
                {
                    inputs[0] = CreateInput(clipInputs.AsMemory(i * clipLength, clipLength), clipHalf, clipShape);
                    if (_signature.TakesImages)
                    {
                        inputs[1] = CreateInput(image, imageHalf, imageShape);
                    }

                    flags[i] = Run(runOptions, inputs, i, cancellationToken);
                }
                finally
                {
                    foreach (OrtValue? input in inputs)
                    {
                        input?.Dispose();
                    }

                    Array.Clear(inputs);
                }

                if (flags[i])
                {
                    image.Span.Clear();
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(clipInputs);
        }

        return flags;
    }

    /// <summary>Pre-processes each image of [batch, height, width, 3] into its slice of <paramref name="clipInputs"/>.</summary>
    private void Preprocess(Memory<float> images, float[] clipInputs, int clipLength, int batch, int height, int width, CancellationToken cancellationToken)
    {
        int imageLength = height * width * 3;
        var options = new ParallelOptions { CancellationToken = cancellationToken };
        Parallel.For(0, batch, options, i => FeatureExtractor.PreprocessValidated(
            images.Span.Slice(i * imageLength, imageLength), 1, height, width, clipInputs.AsSpan(i * clipLength, clipLength)));
    }

    private bool Run(RunOptions runOptions, OrtValue[] inputs, int index, CancellationToken cancellationToken)
    {
        try
        {
            using IDisposableReadOnlyCollection<OrtValue> results = _session.Run(runOptions, _inputNames, inputs, OutputNames);
            GC.KeepAlive(this); // a checker nobody else holds must not have its session finalized mid-run
            ReadOnlySpan<bool> flag = results.First().GetTensorDataAsSpan<bool>();
            if (flag.Length != 1)
            {
                throw new SafetyCheckerModelException(
                    $"{_where} returned {flag.Length} values in '{HasNsfwConceptsName}' for one image; a safety checker returns one flag per image.",
                    ModelPath);
            }

            return flag[0];
        }
        catch (OnnxRuntimeException ex) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The safety check was cancelled.", ex, cancellationToken);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new SafetyCheckerModelException($"{_where} failed on image {index}: {ex.Message}", ModelPath, ex);
        }
    }

    /// <summary>Wraps float32 memory without a copy, or converts it into the float16 buffer a float16 graph needs.</summary>
    private static OrtValue CreateInput(Memory<float> values, Float16[]? half, long[] shape)
    {
        if (half is null)
        {
            return OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, values, shape);
        }

        TensorPrimitives.ConvertToHalf(values.Span, MemoryMarshal.Cast<Float16, Half>(half.AsSpan()));
        return OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, half.AsMemory(), shape);
    }

    private static void RequireModelFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"Safety checker model '{path}' does not exist. Stable Diffusion ONNX models keep it in safety_checker/model.onnx.", path);
        }
    }

    /// <summary>A graph exported with a fixed CLIP size must get that size from the pre-processing.</summary>
    private void CheckClipSize(ClipImageProcessorConfig config, string? modelPath)
    {
        int[] dims = _signature.ClipInputDimensions;
        if (!config.DoCenterCrop || (dims[2] < 0 && dims[3] < 0))
        {
            return;
        }

        if ((dims[2] >= 0 && dims[2] != config.CropSize.Height) || (dims[3] >= 0 && dims[3] != config.CropSize.Width))
        {
            throw new SafetyCheckerModelException(
                $"{_where} takes '{ClipInputName}' of {dims[2]}x{dims[3]} (height x width), but the feature extractor crops to " +
                $"{config.CropSize}{(config.Source is null ? string.Empty : $" ('{config.Source}')")}; the two files do not belong together.",
                modelPath);
        }
    }

    /// <summary>A graph exported with a fixed image size accepts only that size.</summary>
    private void CheckImageSize(int height, int width)
    {
        if (_signature.ImagesDimensions is not { } dims)
        {
            return;
        }

        if ((dims[1] >= 0 && dims[1] != height) || (dims[2] >= 0 && dims[2] != width))
        {
            throw new ArgumentException(
                $"{_where} was exported for {dims[1]}x{dims[2]} images (height x width), not {height}x{width}.", "images");
        }
    }
}
