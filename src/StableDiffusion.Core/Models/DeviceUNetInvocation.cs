using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

namespace StableDiffusion.Models;

/// <summary>
/// A UNet call whose inputs and output live in the provider's device memory (CUDA's), bound once through IOBinding: the prompt embeddings are
/// copied to the device once per generation, and each step copies only the sample in and the prediction out. Fixed device
/// addresses are also what CUDA graph replay needs.
/// </summary>
internal sealed class DeviceUNetInvocation : UNetInvocation
{
    private readonly InferenceSession _session;
    private readonly DeviceMemory _memory;
    private readonly OrtBuffer _sample;
    private readonly OrtBuffer _timestep;
    private readonly OrtBuffer _hiddenStates;
    private readonly OrtBuffer _output;
    private readonly OrtAllocator _allocator;
    private readonly OrtMemoryAllocation _sampleDevice;
    private readonly OrtMemoryAllocation _timestepDevice;
    private readonly OrtMemoryAllocation _hiddenStatesDevice;
    private readonly OrtMemoryAllocation _outputDevice;
    private readonly OrtIoBinding _binding;
    private readonly float[] _timestepValues;
    private float? _boundTimestep;
    private readonly List<OrtBuffer> _registered = [];

    public DeviceUNetInvocation(InferenceSession session, DeviceMemory memory, DeviceThread? thread, string outputName, OrtBuffer sample, OrtBuffer timestep, OrtBuffer hiddenStates, OrtBuffer output)
        : base(thread)
    {
        _session = session;
        _memory = memory;
        _sample = sample;
        _timestep = timestep;
        _hiddenStates = hiddenStates;
        _output = output;
        _timestepValues = new float[timestep.Length];
        _allocator = new OrtAllocator(session, memory.MemoryInfo);
        _sampleDevice = Allocate(sample);
        _timestepDevice = Allocate(timestep);
        _hiddenStatesDevice = Allocate(hiddenStates);
        _outputDevice = Allocate(output);
        _binding = session.CreateIoBinding();
        _binding.BindInput("sample", sample.Type, sample.Shape, _sampleDevice);
        _binding.BindInput("timestep", timestep.Type, timestep.Shape, _timestepDevice);
        _binding.BindInput("encoder_hidden_states", hiddenStates.Type, hiddenStates.Shape, _hiddenStatesDevice);
        _binding.BindOutput(outputName, output.Type, output.Shape, _outputDevice);
        CopyIn(_hiddenStates, _hiddenStatesDevice);
        foreach (OrtBuffer buffer in new[] { sample, output })
        {
            if (memory.TryPinHost(buffer.NativeData, buffer.ByteLength))
            {
                _registered.Add(buffer);
            }
        }
    }

    public override Span<float> Sample => _sample.Single;

    public override ReadOnlySpan<float> NoisePrediction => _output.Single;

    public override void SetEncoderHiddenStates(ReadOnlySpan<float> values)
    {
        _hiddenStates.Write(values);
        CopyIn(_hiddenStates, _hiddenStatesDevice);
    }

    private protected override void RunCore(float timestep, RunOptions runOptions)
    {
        if (_boundTimestep != timestep)
        {
            _timestepValues.AsSpan().Fill(timestep);
            _timestep.Write(_timestepValues);
            CopyIn(_timestep, _timestepDevice);
            _boundTimestep = timestep;
        }

        _sample.Commit();
        CopyIn(_sample, _sampleDevice);
        // ONNX Runtime synchronises its stream before returning, so the output is ready to copy.
        _session.RunWithBinding(runOptions, _binding);
        _memory.CopyToHost(_output.NativeData, _outputDevice.DangerousGetHandle(), _output.ByteLength);
        _output.Refresh();
    }

    public override void Dispose()
    {
        foreach (OrtBuffer buffer in _registered)
        {
            _memory.UnpinHost(buffer.NativeData);
        }

        _binding.Dispose();
        _sampleDevice.Dispose();
        _timestepDevice.Dispose();
        _hiddenStatesDevice.Dispose();
        _outputDevice.Dispose();
        _allocator.Dispose();
        _sample.Dispose();
        _timestep.Dispose();
        _hiddenStates.Dispose();
        _output.Dispose();
    }

    private OrtMemoryAllocation Allocate(OrtBuffer buffer) => _allocator.Allocate(checked((uint)buffer.ByteLength));

    private void CopyIn(OrtBuffer host, OrtMemoryAllocation device) => _memory.CopyToDevice(device.DangerousGetHandle(), host.NativeData, host.ByteLength);
}
