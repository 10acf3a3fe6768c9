using System.CommandLine;
using System.Globalization;
using System.Numerics;
using StableDiffusion.Hub;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Cli;

/// <summary>The command line: options, parsing into <see cref="CliSettings"/>, and exit codes.</summary>
internal sealed class CliCommand
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int UsageError = 2;
    public const int Cancelled = 130;

    private static readonly string[] Providers = ["cpu", "cuda", "tensorrt", "directml", "coreml", "openvino", "rocm"];

    /// <summary>The largest image side the SDK generates.</summary>
    private const int MaxImageSide = 8192;

    /// <summary>Settings of a web UI's parameters that say nothing about the image; all others the tool cannot apply are named in a warning.</summary>
    private static readonly string[] InformationalSettings = ["Version", "Model hash"];

    private readonly Argument<string?> _prompt = new("prompt") { Description = "What to draw (optional with --from-png).", Arity = ArgumentArity.ZeroOrOne };
    private readonly Option<string?> _model = new("--model", "-m") { HelpName = "folder|repo-id|file", Description = $"A model folder in the diffusers layout (config.json and .safetensors per component) or its ONNX layout (model.onnx per component), a Hugging Face repository id, or a Stable Diffusion 1.x checkpoint file (.safetensors, .ckpt) [default: {DiffusionPipeline.DefaultModelId}, downloaded into the Hugging Face cache on first use]" };
    private readonly Option<string?> _baseModel = new("--base-model") { HelpName = "folder|repo-id", Description = "For a checkpoint file: the SD 1.x model in the diffusers layout that gives its configurations, tokenizer, scheduler and safety checker [default: stable-diffusion-v1-5/stable-diffusion-v1-5, or stable-diffusion-v1-5/stable-diffusion-inpainting for an inpainting checkpoint; only those files are downloaded]" };
    private readonly Option<string?> _revision = new("--revision") { Description = "Branch, tag or commit of a Hub model [default: main]" };
    private readonly Option<string?> _variant = new("--variant") { HelpName = "name", Description = "Weights variant of a diffusers model, e.g. fp16: loads diffusion_pytorch_model.fp16.safetensors where a component has it, its plain file where not [default: the plain files]" };
    private readonly Option<string?> _negative = new("--negative-prompt", "-n") { HelpName = "text", Description = "What to steer away from" };
    private readonly Option<int?> _width = Number<int>("--width", ["-W"], "Image width in pixels, a multiple of 8 [default: the model's, 512 for SD 1.5]", MultipleOfEight);
    private readonly Option<int?> _height = Number<int>("--height", ["-H"], "Image height in pixels, a multiple of 8 [default: the model's, 512 for SD 1.5]", MultipleOfEight);
    private readonly Option<int?> _steps = Number<int>("--steps", ["-s"], "Denoising steps [default: 50]", AtLeastOne);
    private readonly Option<float?> _guidance = Number<float>("--guidance", ["--cfg-scale", "-g"], "Classifier-free guidance scale; 1 or less turns guidance off [default: 7.5]",
        g => float.IsFinite(g) ? null : "must be a finite number");
    private readonly Option<RequestedSeed?> _seed = new("--seed")
    {
        Description = "Seed: gives the image diffusers gives with generator=torch.Generator(\"cpu\").manual_seed(SEED); with --count, image i uses SEED + i; -1 picks one at random, as web UIs do [default: random, printed and stored in the PNG]",
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
            {
                return null; // the arity check reports the missing value
            }

            string text = result.Tokens[0].Value;
            if (text == "-1")
            {
                return new RequestedSeed(null);
            }

            if (!ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed))
            {
                result.AddError($"--seed takes a whole number from 0 to {ulong.MaxValue}, or -1 for a random seed, not '{text}'.");
                return null;
            }

            return new RequestedSeed(seed);
        },
    };
    private readonly Option<string?> _scheduler = new("--scheduler", "--sampler") { HelpName = "name", Description = "Scheduler by web UI or diffusers name, e.g. \"Euler a\", \"DPM++ 2M Karras\", DDIM, UniPC, EulerDiscreteScheduler [default: the model's, PLMS for SD 1.5]" };
    private readonly Option<int?> _count = Number<int>("--count", ["-c"], "Images to generate, one seed each [default: 1]", AtLeastOne);
    private readonly Option<string> _provider = new("--provider", "-p") { Description = $"Execution provider: {string.Join(", ", Providers)} (GPU providers need their ONNX Runtime package; see docs/execution-providers.md)", DefaultValueFactory = _ => "cpu" };
    private readonly Option<int?> _deviceId = Number<int>("--device-id", [], "GPU index for cuda, tensorrt, directml and rocm [default: 0]", d => d >= 0 ? null : "must be 0 or more");
    private readonly Option<bool> _noSafetyChecker = new("--no-safety-checker") { Description = "Turn the safety checker off: images are not checked for NSFW content (a warning is printed; you take responsibility for the images)" };
    private readonly Option<string?> _output = new("--output", "-o") { HelpName = "file.png", Description = "The image to write: .png (with its settings in it, for --from-png and web UIs), .jpg or .webp; with --count, -1, -2, ... are added before the extension [default: sdnet-SEED.png]" };
    private readonly Option<bool> _overwrite = new("--overwrite") { Description = "Replace existing files instead of stopping" };
    private readonly Option<string?> _fromPng = new("--from-png") { HelpName = "file.png", Description = "Regenerate from the parameters stored in a PNG written by sdnet or a Stable Diffusion web UI; options given here override them" };
    private readonly Option<bool> _offline = new("--offline") { Description = "Use only the Hugging Face cache, never the network (like HF_HUB_OFFLINE=1)" };
    private readonly Option<string?> _initImage = new("--init-image", "-i") { HelpName = "file", Description = "Change this image instead of starting from noise (image-to-image); with --mask, repaint part of it (inpainting)" };
    private readonly Option<double?> _strength = Number<double>("--strength", [], "With --init-image: how much to change it, from 0 (keep) to 1 (replace) [default: 0.8; 1 with --mask]",
        s => s is >= 0 and <= 1 ? null : "must be between 0 and 1");
    private readonly Option<string?> _mask = new("--mask") { HelpName = "file", Description = "With --init-image: the region to repaint, white over black, the image's size (inpainting)" };
    private readonly Option<string[]> _embedding = new("--embedding", "-e")
    {
        HelpName = "file[:token]",
        Description = "A textual inversion embedding to load (diffusers .safetensors/.bin, web UI .pt/.safetensors); its token is the file's own unless given after a colon, e.g. easynegative.safetensors:easynegative. Repeatable",
        Arity = ArgumentArity.ZeroOrMore,
    };
    private readonly Option<int?> _clipSkip = Number<int>("--clip-skip", [], "Clip skip as web UIs count it: 1 uses the text encoder's last layer, 2 the one before (diffusers' clip_skip=1) [default: 1]", AtLeastOne);
    private readonly Option<bool> _noPromptWeighting = new("--no-prompt-weighting") { Description = "Read prompts as diffusers does: no (word:1.2) weights or BREAK, cut at 77 tokens [default: web UI syntax and long prompts on]" };
    private readonly Option<string[]> _lora = new("--lora") { HelpName = "file[:scale]", Description = "Apply a LoRA (.safetensors, kohya or diffusers/PEFT) at a weight [default: 1]; repeat for several. Recorded in the PNG as <lora:name:scale>" };
    private readonly Option<string> _loraDir = new("--lora-dir") { HelpName = "folder", Description = "Where <lora:name:scale> tags in the prompt find name.safetensors", DefaultValueFactory = _ => "." };
    private readonly Option<bool> _verbose = new("--verbose", "-v") { Description = "Log what the SDK does, and show stack traces of unexpected errors" };

    public CliCommand()
    {
        _variant.Validators.Add(result =>
        {
            string? variant = result.GetValue(_variant);
            if (variant is not null && (variant.Length == 0 || !variant.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            {
                result.AddError($"--variant takes a name of letters, digits, '-' and '_' such as fp16, not '{variant}'.");
            }
        });
        _provider.Validators.Add(result =>
        {
            string provider = result.GetValue(_provider)!;
            if (!Providers.Contains(provider, StringComparer.OrdinalIgnoreCase))
            {
                result.AddError($"Unknown --provider '{provider}'; use one of: {string.Join(", ", Providers)}.");
            }
        });
    }

    /// <summary>Parses <paramref name="args"/> and runs the generation.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="output">Where the written files' paths go (default: standard output).</param>
    /// <param name="error">Where progress, warnings, the timing summary and errors go (default: standard error).</param>
    /// <param name="cancellationToken">Cancels like Ctrl+C does (which cancels too).</param>
    /// <returns>The exit code: <see cref="Success"/>, <see cref="Failure"/>, <see cref="UsageError"/> or <see cref="Cancelled"/>.</returns>
    public async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null, CancellationToken cancellationToken = default)
    {
        var root = new RootCommand("""
            Generate images with Stable Diffusion 1.x on ONNX Runtime: the same image as Hugging Face diffusers for the same settings.
            Each PNG stores its settings in a "parameters" text chunk that Stable Diffusion web UIs read; --from-png reads them back.

            Examples:
              sdnet "a photo of an astronaut riding a horse on mars" --seed 42
              sdnet "a watercolor fox" -n "blurry" --scheduler "DPM++ 2M Karras" --steps 25 -W 512 -H 768 -c 4
              sdnet --from-png sdnet-42.png --steps 80 -o better.png
              sdnet "a watercolor painting" --init-image photo.jpg --strength 0.6
              sdnet "a red sofa" --init-image room.png --mask sofa-mask.png
              sdnet "a castle <lora:pixel-art:0.8>" --lora-dir ~/loras --lora detail.safetensors:0.5

            Exit codes: 0 done, 1 failed (model, download, provider, file), 2 bad command line, 130 cancelled (Ctrl+C).
            """)
        {
            _prompt, _model, _baseModel, _revision, _variant, _negative, _width, _height, _steps, _guidance, _seed, _scheduler, _count, _provider, _deviceId,
            _noSafetyChecker, _output, _overwrite, _fromPng, _initImage, _strength, _mask, _embedding, _clipSkip, _noPromptWeighting, _offline, _verbose, _lora, _loraDir,
        };
        output ??= Console.Out;
        error ??= Console.Error;
        root.SetAction(async (parse, token) =>
        {
            CliSettings settings;
            try
            {
                settings = Bind(parse, error);
            }
            catch (CliUsageException ex)
            {
                await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
                return UsageError;
            }

            return await new Generator(settings, output, error).RunAsync(token).ConfigureAwait(false);
        });

        ParseResult parsed = root.Parse(args);
        IEnumerable<string> errors = parsed.Errors.Select(e => e.Message);

        // An unknown option would otherwise be taken for the prompt; a prompt that starts with '-' can follow "--".
        if (parsed.GetValue(_prompt) is ['-', ..] unknown && !args.Contains("--"))
        {
            errors = errors.Prepend($"Unknown option '{unknown}'.");
        }

        if (errors.Any())
        {
            foreach (string message in errors)
            {
                await error.WriteLineAsync($"error: {message}").ConfigureAwait(false);
            }

            await error.WriteLineAsync("Run 'sdnet --help' for the options.").ConfigureAwait(false);
            return UsageError;
        }

        // Ctrl+C (SIGINT) and SIGTERM cancel the token: the generation stops within one model call and nothing half-written
        // is left. A model load that cannot stop is abandoned after the termination timeout, with exit code 130.
        var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        return await parsed.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private static string? MultipleOfEight(int size) =>
        size <= 0 || size % 8 != 0 ? "must be a positive multiple of 8 (the VAE works on 8x8 pixel blocks)"
        : size > MaxImageSide ? $"must be at most {MaxImageSide} pixels"
        : null;

    private static string? AtLeastOne(int value) => value >= 1 ? null : "must be at least 1";

    /// <summary>A numeric option whose errors name the option and the value ("--steps must be at least 1, not 0").</summary>
    private static Option<T?> Number<T>(string name, string[] aliases, string description, Func<T, string?>? check = null)
        where T : struct, INumber<T> => new(name, aliases)
        {
            Description = description,
            CustomParser = result =>
            {
                if (result.Tokens.Count == 0)
                {
                    return null; // the arity check reports the missing value
                }

                string text = result.Tokens[0].Value;
                bool integral = typeof(T) != typeof(float) && typeof(T) != typeof(double);
                if (!T.TryParse(text, integral ? NumberStyles.Integer : NumberStyles.Float, CultureInfo.InvariantCulture, out T value))
                {
                    result.AddError($"{name} takes {(integral ? "a whole number" : "a number")}, not '{text}'.");
                    return null;
                }

                if (check?.Invoke(value) is { } problem)
                {
                    result.AddError($"{name} {problem}, not {text}.");
                    return null;
                }

                return value;
            },
        };

    private CliSettings Bind(ParseResult parse, TextWriter error)
    {
        string? fromPngPath = parse.GetValue(_fromPng);
        GenerationParameters? fromPng = fromPngPath is null ? null : ImageFiles.ReadParameters(fromPngPath);
        if (fromPng is not null && fromPng.Extra.Keys.Except(InformationalSettings, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray() is { Length: > 0 } ignored)
        {
            error.WriteLine($"warning: --from-png: sdnet cannot apply these settings of '{fromPngPath}' yet, so the image may differ: {string.Join(", ", ignored)}.");
        }

        string? prompt = parse.GetValue(_prompt) ?? fromPng?.Prompt;
        if (string.IsNullOrWhiteSpace(prompt))
        {
            throw new CliUsageException("give a prompt, e.g. sdnet \"a photo of an astronaut riding a horse on mars\" (or --from-png with a PNG that holds one).");
        }

        string? scheduler = parse.GetValue(_scheduler) ?? fromPng?.Sampler;
        if (scheduler is not null)
        {
            ValidateScheduler(scheduler, parse.GetValue(_scheduler) is null ? $"--from-png: the sampler \"{scheduler}\"" : "--scheduler");
        }

        string? initImage = parse.GetValue(_initImage);
        string? mask = parse.GetValue(_mask);
        if (initImage is null && (mask is not null || parse.GetValue(_strength) is not null))
        {
            throw new CliUsageException("--mask and --strength need --init-image, the image to change.");
        }

        foreach ((string? file, string option) in new[] { (initImage, "--init-image"), (mask, "--mask") })
        {
            if (file is not null && !File.Exists(file))
            {
                throw new CliUsageException($"{option}: '{file}' does not exist.");
            }
        }

        // A web UI's image-to-image and inpainting PNGs record a denoising strength (hires fix records one too, with its
        // upscale, on a text-to-image generation): regenerating them needs the input image, which a PNG does not hold.
        if (fromPng is { Strength: double recorded } && initImage is null && !fromPng.Extra.ContainsKey("Hires upscale"))
        {
            throw new CliUsageException(
                $"--from-png: '{fromPngPath}' was made from an input image (image-to-image or inpainting, denoising strength {recorded.ToString(CultureInfo.InvariantCulture)}), " +
                "which the PNG does not hold: pass that image with --init-image (and the mask with --mask, if it was inpainted).");
        }

        if (parse.GetValue(_output) is { } outputPath)
        {
            ImageFiles.ValidateOutput(outputPath);
        }

        if (initImage is not null && mask is null && (parse.GetValue(_width) is not null || parse.GetValue(_height) is not null))
        {
            throw new CliUsageException("--width and --height do not apply to image-to-image: the output has the input image's size, rounded down to a multiple of 8.");
        }

        string model = parse.GetValue(_model) ?? ModelFromPng(fromPng, error) ?? DiffusionPipeline.DefaultModelId;
        if (parse.GetValue(_baseModel) is not null && !File.Exists(model))
        {
            throw new CliUsageException($"--base-model applies to a checkpoint file given with --model; '{model}' is a model folder or repository, which has its own configurations.");
        }

        (string modelPrompt, IReadOnlyList<LoraRequest> loras, string recordedPrompt) = Loras(parse, prompt);
        return new CliSettings
        {
            Prompt = modelPrompt,
            RecordedPrompt = recordedPrompt,
            Loras = loras,
            InitImage = initImage,
            Mask = mask,
            Strength = parse.GetValue(_strength) ?? (initImage is null ? null : fromPng?.Strength) ?? (mask is null ? 0.8 : 1.0),
            NegativePrompt = parse.GetValue(_negative) ?? fromPng?.NegativePrompt,
            Model = model,
            BaseModel = parse.GetValue(_baseModel),
            Revision = parse.GetValue(_revision),
            Variant = parse.GetValue(_variant),
            Width = parse.GetValue(_width) ?? (fromPng?.Width > 0 ? fromPng.Width : null),
            Height = parse.GetValue(_height) ?? (fromPng?.Height > 0 ? fromPng.Height : null),
            Steps = parse.GetValue(_steps) ?? fromPng?.NumInferenceSteps ?? 50,
            Guidance = parse.GetValue(_guidance) ?? fromPng?.GuidanceScale ?? 7.5f,
            Seed = parse.GetValue(_seed) is { } seed ? seed.Value : fromPng?.Seed,
            Scheduler = scheduler,
            Count = parse.GetValue(_count) ?? 1,
            Provider = parse.GetValue(_provider)!.ToLowerInvariant(),
            DeviceId = parse.GetValue(_deviceId) ?? 0,
            SafetyChecker = !parse.GetValue(_noSafetyChecker),
            Output = parse.GetValue(_output),
            Overwrite = parse.GetValue(_overwrite),
            Offline = parse.GetValue(_offline),
            Verbose = parse.GetValue(_verbose),
            Embeddings = [.. (parse.GetValue(_embedding) ?? []).Select(ParseEmbedding)],
            // Web UIs count from 1 (no skip); diffusers' clip_skip counts the layers skipped.
            ClipSkip = parse.GetValue(_clipSkip) is int webUIClipSkip ? (webUIClipSkip > 1 ? webUIClipSkip - 1 : null) : fromPng?.ClipSkip,
            PromptWeighting = !parse.GetValue(_noPromptWeighting),
            ExpectedEmbeddings = fromPng?.TextualInversionHashes.Keys.ToArray() ?? [],
        };
    }

    // "file" or "file:token": the token follows the last colon unless the whole text names a file (a Windows drive's colon).
    private static Embedding ParseEmbedding(string value)
    {
        int colon = value.LastIndexOf(':');
        (string file, string? token) = File.Exists(value) || colon <= 1 ? (value, null) : (value[..colon], value[(colon + 1)..]);
        if (!File.Exists(file))
        {
            throw new CliUsageException($"--embedding: '{file}' does not exist.");
        }

        if (token is not null && string.IsNullOrWhiteSpace(token))
        {
            throw new CliUsageException($"--embedding: '{value}' has an empty token after the colon; write file:token, or the file alone to use its own token.");
        }

        return new Embedding(file, token);
    }

    /// <summary>The prompt the model sees, the LoRAs of <c>--lora</c> and of the prompt's tags, and the prompt the PNG records.</summary>
    private (string Prompt, IReadOnlyList<LoraRequest> Loras, string Recorded) Loras(ParseResult parse, string prompt)
    {
        LoraRequest[] fromOptions = [.. (parse.GetValue(_lora) ?? []).Select(LoraPrompt.FromOption)];
        (string modelPrompt, IReadOnlyList<LoraRequest> fromTags) = LoraPrompt.TakeTags(prompt, parse.GetValue(_loraDir)!);
        return (modelPrompt, [.. fromTags, .. fromOptions], LoraPrompt.Recorded(prompt, fromOptions));
    }

    /// <summary>Checks a scheduler name before anything is loaded, so a typo fails at once rather than after a download.</summary>
    /// <exception cref="CliUsageException">The name is unknown; the message lists the known names.</exception>
    private static void ValidateScheduler(string name, string source)
    {
        try
        {
            SchedulerFactory.ConfigFor(name, SchedulerConfig.Create(PndmScheduler.DiffusersName));
        }
        catch (SchedulerConfigException ex)
        {
            throw new CliUsageException($"{source}: {ex.Message}");
        }
    }

    // sdnet records the folder or repository id it loaded, which can be loaded again; web UIs record a checkpoint's display
    // name, which cannot: then the default model is used, and the user is told so.
    private static string? ModelFromPng(GenerationParameters? fromPng, TextWriter error)
    {
        if (fromPng?.Model is not { } model)
        {
            return null;
        }

        if (Directory.Exists(model) || File.Exists(model) || model.Count(c => c == '/') == 1)
        {
            return model;
        }

        error.WriteLine($"warning: the PNG names the model '{model}', which is neither a folder here nor a Hub repository id; using {DiffusionPipeline.DefaultModelId} (pass --model to choose).");
        return null;
    }
}

/// <summary>What the command line asked for.</summary>
internal sealed record CliSettings
{
    /// <summary>The prompt the model sees (without <c>&lt;lora:...&gt;</c> tags).</summary>
    public required string Prompt { get; init; }

    /// <summary>The prompt the PNG records: as typed, with a <c>&lt;lora:name:scale&gt;</c> tag for every LoRA.</summary>
    public required string RecordedPrompt { get; init; }

    /// <summary>The LoRAs to apply.</summary>
    public IReadOnlyList<LoraRequest> Loras { get; init; } = [];

    /// <summary>The image to change (image-to-image, or inpainting with <see cref="Mask"/>); null for text-to-image.</summary>
    public string? InitImage { get; init; }

    /// <summary>The region of <see cref="InitImage"/> to repaint.</summary>
    public string? Mask { get; init; }

    /// <summary>How much to change <see cref="InitImage"/>, in [0, 1].</summary>
    public double Strength { get; init; } = 0.8;

    public string? NegativePrompt { get; init; }

    /// <summary>A model folder or repository id, or a single-file checkpoint.</summary>
    public required string Model { get; init; }

    /// <summary>The base model of a single-file <see cref="Model"/>; null for diffusers' default.</summary>
    public string? BaseModel { get; init; }

    public string? Revision { get; init; }

    /// <summary>The weights variant of a diffusers model (fp16), or null for the plain files.</summary>
    public string? Variant { get; init; }

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

    /// <summary>Textual inversion embeddings to load, in order.</summary>
    public IReadOnlyList<Embedding> Embeddings { get; init; } = [];

    /// <summary>diffusers' clip_skip (web UIs' count minus one); null for none.</summary>
    public int? ClipSkip { get; init; }

    /// <summary>Whether prompts use the web UI syntax and may be long (the CLI's default, as web UI users expect).</summary>
    public bool PromptWeighting { get; init; } = true;

    /// <summary>The embedding tokens the --from-png PNG used; those not loaded are named in a warning.</summary>
    public IReadOnlyList<string> ExpectedEmbeddings { get; init; } = [];

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Prompt} ({Steps} steps, guidance {Guidance})");
}

/// <summary>A textual inversion embedding to load: its file, and its token when not the file's own.</summary>
internal sealed record Embedding(string File, string? Token);

/// <summary>A command line that cannot be run as given; the message says why.</summary>
internal sealed class CliUsageException(string message) : Exception(message);

/// <summary>The seed asked for on the command line: a value, or null for a random one (<c>--seed -1</c>).</summary>
internal readonly record struct RequestedSeed(ulong? Value);
