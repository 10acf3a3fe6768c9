using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using StableDiffusion.Hub;

namespace StableDiffusion.Cli;

/// <summary>The command line: options, parsing into <see cref="CliSettings"/>, and exit codes.</summary>
internal sealed class CliCommand
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int UsageError = 2;
    public const int Cancelled = 130;

    private readonly Argument<string?> _prompt = new("prompt") { Description = "What to draw.", Arity = ArgumentArity.ZeroOrOne };
    private readonly Option<string> _model = new("--model", "-m") { Description = $"A model folder in the diffusers ONNX layout, or a Hugging Face repository id (default: {HubClient.DefaultModelId}, downloaded on first use)." };
    private readonly Option<string?> _revision = new("--revision") { Description = "Branch, tag or commit of a Hub model (default: main)." };
    private readonly Option<string?> _negative = new("--negative-prompt", "-n") { Description = "What to steer away from." };
    private readonly Option<int?> _width = new("--width", "-W") { Description = "Image width in pixels, a multiple of 8 (default: the model's, 512 for SD 1.5)." };
    private readonly Option<int?> _height = new("--height", "-H") { Description = "Image height in pixels, a multiple of 8 (default: the model's)." };
    private readonly Option<int?> _steps = new("--steps", "-s") { Description = "Denoising steps (default 50)." };
    private readonly Option<float?> _guidance = new("--guidance", "-g") { Description = "Classifier-free guidance scale (default 7.5; 1 turns guidance off)." };
    private readonly Option<ulong?> _seed = new("--seed") { Description = "Seed: the same seed gives the image diffusers gives with torch.Generator(\"cpu\").manual_seed(seed). Random when omitted (and printed)." };
    private readonly Option<string?> _scheduler = new("--scheduler") { Description = "Scheduler by name, e.g. \"Euler a\", \"DPM++ 2M Karras\", DDIM, PNDM (default: the model's)." };
    private readonly Option<int?> _count = new("--count", "-c") { Description = "Images to generate (default 1)." };
    private readonly Option<string> _provider = new("--provider") { Description = "Execution provider: cpu (default), cuda, tensorrt, directml, coreml, openvino, rocm.", DefaultValueFactory = _ => "cpu" };
    private readonly Option<int> _deviceId = new("--device-id") { Description = "GPU index for GPU providers (default 0)." };
    private readonly Option<bool> _noSafetyChecker = new("--no-safety-checker") { Description = "Turn the safety checker off (you take responsibility for the images; a warning is logged)." };
    private readonly Option<string?> _output = new("--output", "-o") { Description = "The PNG to write (default: sdnet-SEED.png; with --count, -1, -2, ... are added)." };
    private readonly Option<bool> _overwrite = new("--overwrite") { Description = "Replace existing output files instead of stopping." };
    private readonly Option<string?> _fromPng = new("--from-png") { Description = "Regenerate from the parameters stored in a PNG written by this tool or a Stable Diffusion web UI; other options override them." };
    private readonly Option<bool> _offline = new("--offline") { Description = "Use only the Hugging Face cache (like HF_HUB_OFFLINE=1)." };
    private readonly Option<bool> _verbose = new("--verbose", "-v") { Description = "Log what the SDK does." };

    public async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var root = new RootCommand("Generate images with Stable Diffusion 1.x on ONNX Runtime, as diffusers would.")
        {
            _prompt, _model, _revision, _negative, _width, _height, _steps, _guidance, _seed, _scheduler, _count, _provider, _deviceId,
            _noSafetyChecker, _output, _overwrite, _fromPng, _offline, _verbose,
        };
        output ??= Console.Out;
        error ??= Console.Error;
        root.SetAction(async (parse, cancellationToken) =>
        {
            CliSettings settings;
            try
            {
                settings = Bind(parse);
            }
            catch (CliUsageException ex)
            {
                await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return UsageError;
            }

            return await new Generator(settings, output, error).RunAsync(cancellationToken).ConfigureAwait(false);
        });

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (ParseError parseError in parsed.Errors)
            {
                await error.WriteLineAsync($"error: {parseError.Message}").ConfigureAwait(false);
            }

            await error.WriteLineAsync("Run 'sdnet --help' for the options.").ConfigureAwait(false);
            return UsageError;
        }

        // Ctrl+C cancels the token; the generation stops within one model call.
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error }).ConfigureAwait(false);
    }

    private CliSettings Bind(ParseResult parse)
    {
        GenerationParameters? fromPng = parse.GetValue(_fromPng) is { } png ? PngMetadata.Read(png) : null;
        string? prompt = parse.GetValue(_prompt) ?? fromPng?.Prompt;
        if (string.IsNullOrEmpty(prompt))
        {
            throw new CliUsageException("give a prompt (or --from-png with a PNG that holds one).");
        }

        int count = parse.GetValue(_count) ?? 1;
        if (count < 1)
        {
            throw new CliUsageException($"--count must be at least 1, not {count}.");
        }

        string provider = parse.GetValue(_provider)!;
        string[] providers = ["cpu", "cuda", "tensorrt", "directml", "coreml", "openvino", "rocm"];
        if (!providers.Contains(provider, StringComparer.OrdinalIgnoreCase))
        {
            throw new CliUsageException($"unknown --provider '{provider}'; use one of: {string.Join(", ", providers)}.");
        }

        return new CliSettings
        {
            Prompt = prompt,
            NegativePrompt = parse.GetValue(_negative) ?? fromPng?.NegativePrompt,
            Model = parse.GetValue(_model) ?? UsableModel(fromPng?.Model) ?? HubClient.DefaultModelId,
            Revision = parse.GetValue(_revision),
            Width = parse.GetValue(_width) ?? (fromPng?.Width > 0 ? fromPng.Width : null),
            Height = parse.GetValue(_height) ?? (fromPng?.Height > 0 ? fromPng.Height : null),
            Steps = parse.GetValue(_steps) ?? fromPng?.Steps ?? 50,
            Guidance = parse.GetValue(_guidance) ?? fromPng?.CfgScale ?? 7.5f,
            Seed = parse.GetValue(_seed) ?? fromPng?.Seed,
            Scheduler = parse.GetValue(_scheduler) ?? fromPng?.Sampler,
            Count = count,
            Provider = provider.ToLowerInvariant(),
            DeviceId = parse.GetValue(_deviceId),
            SafetyChecker = !parse.GetValue(_noSafetyChecker),
            Output = parse.GetValue(_output),
            Overwrite = parse.GetValue(_overwrite),
            Offline = parse.GetValue(_offline),
            Verbose = parse.GetValue(_verbose),
        };
    }

    // Web UIs record a model's display name; this tool records the folder or repository id it loaded, which can be reused.
    private static string? UsableModel(string? model) =>
        model is not null && (Directory.Exists(model) || model.Count(c => c == '/') == 1) ? model : null;
}

/// <summary>What the command line asked for.</summary>
internal sealed record CliSettings
{
    public required string Prompt { get; init; }

    public string? NegativePrompt { get; init; }

    public required string Model { get; init; }

    public string? Revision { get; init; }

    public int? Width { get; init; }

    public int? Height { get; init; }

    public int Steps { get; init; } = 50;

    public float Guidance { get; init; } = 7.5f;

    public ulong? Seed { get; init; }

    public string? Scheduler { get; init; }

    public int Count { get; init; } = 1;

    public string Provider { get; init; } = "cpu";

    public int DeviceId { get; init; }

    public bool SafetyChecker { get; init; } = true;

    public string? Output { get; init; }

    public bool Overwrite { get; init; }

    public bool Offline { get; init; }

    public bool Verbose { get; init; }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Prompt} ({Steps} steps, guidance {Guidance})");
}

/// <summary>A command line that cannot be run as given; the message says why.</summary>
internal sealed class CliUsageException(string message) : Exception(message);
