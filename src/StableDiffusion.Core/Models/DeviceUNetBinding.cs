using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

namespace StableDiffusion.Models;

/// <summary>
/// UNet inputs and output in the provider's device memory, bound once through IOBinding: before each run only the inputs
/// written since the last one are copied in (the sample every step, the timestep when it changes, the prompt embeddings
/// once per generation, a contributor's inputs when it writes them), and the prediction is copied out. Fixed device
/// addresses are also what graph replay (CUDA graphs) needs.
/// </summary>
internal sealed class DeviceUNetBinding : UNetBinding
{
    private readonly InferenceSession _session;
    private readonly DeviceMemory _memory;
    private readonly OrtAllocator _allocator;
    private readonly OrtMemoryAllocation[] _inputMemory;
    private readonly OrtMemoryAllocation? _outputMemory;
    private readonly OrtIoBinding _binding;
    private readonly List<OrtBuffer> _pinned = [];

    public DeviceUNetBinding(InferenceSession session, DeviceMemory memory, UNetInputs inputs, string outputName, OrtBuffer output)
        : base(inputs, output)
    {
        _session = session;
        _memory = memory;
        _allocator = new OrtAllocator(session, memory.MemoryInfo);
        _inputMemory = new OrtMemoryAllocation[inputs.All.Length];
        _binding = session.CreateIoBinding();
        try
        {
            for (int i = 0; i < inputs.All.Length; i++)
            {
                OrtBuffer buffer = inputs.All[i].Buffer;
                _inputMemory[i] = Allocate(buffer);
                _binding.BindInput(inputs.All[i].Name, buffer.Type, buffer.Shape, _inputMemory[i]);
                Pin(buffer);
            }

            _outputMemory = Allocate(output);
            _binding.BindOutput(outputName, output.Type, output.Shape, _outputMemory);
            Pin(output);
        }
        catch
        {
            // The host buffers stay the caller's until the binding exists.
            ReleaseDevice();
            throw;
        }
    }

    public override void Run(RunOptions runOptions)
    {
        UNetInput[] inputs = Inputs.All;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].Changed)
            {
                OrtBuffer buffer = inputs[i].Buffer;
                _memory.CopyToDevice(_inputMemory[i].DangerousGetHandle(), buffer.NativeData, buffer.ByteLength);
                inputs[i].Changed = false;
            }
        }

        // ONNX Runtime synchronises its stream before returning, so the output is ready to copy.
        _session.RunWithBinding(runOptions, _binding);
        _memory.CopyToHost(Output.NativeData, _outputMemory!.DangerousGetHandle(), Output.ByteLength);
        Output.Refresh();
    }

    public override void Dispose()
    {
        ReleaseDevice();
        base.Dispose();
    }

    private void ReleaseDevice()
    {
        foreach (OrtBuffer buffer in _pinned)
        {
            _memory.UnpinHost(buffer.NativeData);
        }

        _binding.Dispose();
        foreach (OrtMemoryAllocation? allocation in _inputMemory)
        {
            allocation?.Dispose();
        }

        _outputMemory?.Dispose();
        _allocator.Dispose();
    }

    private OrtMemoryAllocation Allocate(OrtBuffer buffer) => _allocator.Allocate(checked((uint)buffer.ByteLength));

    private void Pin(OrtBuffer buffer)
    {
        if (_memory.TryPinHost(buffer.NativeData, buffer.ByteLength))
        {
            _pinned.Add(buffer);
        }
    }
}
