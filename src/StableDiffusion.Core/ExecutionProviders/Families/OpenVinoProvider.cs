namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>Intel OpenVINO, configured by its provider options (<c>device_type</c>: CPU, GPU or NPU), appended by name.</summary>
internal sealed class OpenVinoProvider() : ExecutionProviderFamily("OpenVINOExecutionProvider", ["OpenVINO"], "Intel.ML.OnnxRuntime.OpenVino");
