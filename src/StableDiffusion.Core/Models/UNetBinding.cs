using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.Models;

/// <summary>
/// The buffers of UNet calls of one shape, one per graph input and one for the output, bound once and reused by every
/// step, so a step allocates nothing: host buffers that ONNX Runtime reads in place (<see cref="HostUNetBinding"/>), or
/// device memory that only changed inputs are copied into (<see cref="DeviceUNetBinding"/>). Not thread-safe.
/// </summary>
internal abstract class UNetBinding : IDisposable
{
    private readonly float[] _timestepValues;
    private float? _timestep;

    private protected UNetBinding(UNetInputs inputs, OrtBuffer output)
    {
        Inputs = inputs;
        Sample = inputs[UNetSignature.SampleName];
        Timestep = inputs[UNetSignature.TimestepName];
        HiddenStates = inputs[UNetSignature.HiddenStatesName];
        Output = output;
        _timestepValues = new float[Timestep.Length];
    }

    /// <summary>Every bound input, by name.</summary>
    public UNetInputs Inputs { get; }

    /// <summary>The sample input, written in place through its single-precision view.</summary>
    public UNetInput Sample { get; }

    /// <summary>The prompt embeddings input.</summary>
    public UNetInput HiddenStates { get; }

    /// <summary>The prediction, [batch, latent channels, height, width].</summary>
    public OrtBuffer Output { get; }

    private UNetInput Timestep { get; }

    /// <summary>Writes the timestep into every element of its input (scalar, [1] or [batch]), when it changed.</summary>
    public void SetTimestep(float timestep)
    {
        if (_timestep != timestep)
        {
            _timestepValues.AsSpan().Fill(timestep);
            Timestep.Write(_timestepValues);
            _timestep = timestep;
        }
    }

    /// <summary>Runs the graph on the bound inputs; on the model's device thread when it has one.</summary>
    public abstract void Run(RunOptions runOptions);

    public virtual void Dispose()
    {
        foreach (UNetInput input in Inputs.All)
        {
            input.Buffer.Dispose();
        }

        Output.Dispose();
    }
}

/// <summary>Pinned host buffers bound as OrtValues: ONNX Runtime copies them to the device (if any) inside each run.</summary>
internal sealed class HostUNetBinding : UNetBinding
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly OrtValue[] _inputValues;
    private readonly string[] _outputNames;
    private readonly OrtValue[] _outputValues;

    public HostUNetBinding(InferenceSession session, UNetInputs inputs, string outputName, OrtBuffer output)
        : base(inputs, output)
    {
        _session = session;
        _inputNames = [.. inputs.All.Select(input => input.Name)];
        _inputValues = [.. inputs.All.Select(input => input.Buffer.Value)];
        _outputNames = [outputName];
        _outputValues = [output.Value];
    }

    public override void Run(RunOptions runOptions)
    {
        _session.Run(runOptions, _inputNames, _inputValues, _outputNames, _outputValues);
        Output.Refresh();
    }
}
