using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.Models;

/// <summary>
/// ONNX Runtime failed while running a model during a generation (other than by cancellation): the request asked for
/// something the graph cannot do (a size its layers cannot take, more memory than there is), or the model's parts do not
/// fit together (a tokenizer that pads to more tokens than the text encoder takes). The message names the component, what
/// it was given, ONNX Runtime's error and what to try; <see cref="Exception.InnerException"/> is ONNX Runtime's exception.
/// </summary>
public sealed class ModelRunException : StableDiffusionException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed, on what input, and what to try.</param>
    /// <param name="component">The component that failed, such as <c>unet</c>.</param>
    /// <param name="path">The graph file, if known.</param>
    /// <param name="innerException">ONNX Runtime's error.</param>
    public ModelRunException(string message, string component, string? path, Exception innerException)
        : base(message, innerException)
    {
        Component = component;
        Path = path;
    }

    /// <summary>The component that failed (see <see cref="ModelComponents"/>).</summary>
    public string Component { get; }

    /// <summary>The graph file, if known.</summary>
    public string? Path { get; }

    /// <summary>The exception for <paramref name="model"/> failing on <paramref name="inputs"/>, with a hint when one applies.</summary>
    internal static ModelRunException For(OnnxModel model, string inputs, OnnxRuntimeException error, string? hint = null)
    {
        if (error.Message.Contains("allocate", StringComparison.OrdinalIgnoreCase))
        {
            hint = "It ran out of memory: generate smaller or fewer images per call.";
        }

        string cause = error.Message.Trim();
        cause = cause.EndsWith('.') ? cause : cause + ".";
        return new ModelRunException(
            $"ONNX Runtime failed running the {model.Component} model '{model.ModelPath}' on {inputs}: {cause}{(hint is null ? string.Empty : " " + hint)}",
            model.Component, model.ModelPath, error);
    }
}
