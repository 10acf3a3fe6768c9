using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Safety;

namespace StableDiffusion.Loading;

/// <summary>The safety checker of a model folder: its image pre-processing, and its graph (an ONNX export, or built) with a session.</summary>
internal static class SafetyCheckers
{
    /// <summary>Reads <c>feature_extractor/preprocessor_config.json</c>.</summary>
    public static ClipImageProcessor LoadFeatureExtractor(string path)
    {
        try
        {
            return ClipImageProcessor.Load(path);
        }
        catch (PreprocessorConfigException ex)
        {
            throw new ModelLoadException($"The safety checker's image pre-processing configuration cannot be used: {ex.Message}", path, ex);
        }
    }

    /// <summary>Loads an exported <c>safety_checker/model.onnx</c>.</summary>
    public static SafetyChecker Load(string graph, ClipImageProcessor processor, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        Create(OnnxModel.CreateSession(graph, ModelComponents.SafetyChecker, settings, configure), processor, graph);

    /// <summary>Loads a graph built from <c>safety_checker/config.json</c> and its weights.</summary>
    public static SafetyChecker Create(BuiltGraph graph, ClipImageProcessor processor, SessionSettings settings, Action<string, SessionOptions>? configure) =>
        Create(OnnxModel.CreateSession(graph, ModelComponents.SafetyChecker, settings, configure), processor, graph.Path);

    private static SafetyChecker Create(InferenceSession session, ClipImageProcessor processor, string path)
    {
        try
        {
            return new SafetyChecker(session, processor, ownsSession: true, modelPath: path);
        }
        catch (SafetyCheckerModelException ex)
        {
            session.Dispose();
            throw new ModelLoadException($"The safety checker '{path}' cannot be used: {ex.Message}", path, ex);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }
}
