using Microsoft.ML.OnnxRuntime;
using StableDiffusion.ExecutionProviders;

namespace StableDiffusion.Models;

/// <summary>
/// One generation's UNet calls on a binding: each step writes the timestep, lets the contributors write their inputs, and
/// runs the graph (on the model's device thread when it has one), allocating nothing. Disposing it releases the binding,
/// or, with a captured graph whose one binding every generation shares, ends this generation's turn. Not thread-safe.
/// </summary>
internal sealed class UNetInvocation : IDisposable
{
    private readonly UNetBinding _binding;
    private readonly SemaphoreSlim? _turn;
    private readonly IUNetInputContributor[] _contributors;
    private readonly DeviceThread? _thread;
    private readonly Action? _runOnThread;
    private RunOptions? _pendingOptions;
    private int _disposed;

    /// <param name="binding">The bound buffers.</param>
    /// <param name="turn">The captured graph's turn, released on dispose; null when the invocation owns the binding.</param>
    /// <param name="contributors">The contributors of the UNet's extra inputs.</param>
    /// <param name="thread">The model's device thread, if it has one.</param>
    public UNetInvocation(UNetBinding binding, SemaphoreSlim? turn, IUNetInputContributor[] contributors, DeviceThread? thread)
    {
        _binding = binding;
        _turn = turn;
        _contributors = contributors;
        _thread = thread;
        // One delegate per generation and a field for its argument, so that a step allocates nothing.
        _runOnThread = thread is null ? null : () => _binding.Run(_pendingOptions!);
    }

    /// <summary>The sample to fill before <see cref="Run"/>, [batch, channels, height, width].</summary>
    public Span<float> Sample => _binding.Sample.Buffer.Single;

    /// <summary>The prediction after <see cref="Run"/>, [batch, latent channels, height, width].</summary>
    public ReadOnlySpan<float> NoisePrediction => _binding.Output.Single;

    /// <summary>Runs the UNet for one step, with the sample as written to <see cref="Sample"/>.</summary>
    public void Run(in UNetStep step, RunOptions runOptions)
    {
        _binding.Sample.CommitSingle();
        _binding.SetTimestep(step.Timestep);
        for (int i = 0; i < _contributors.Length; i++)
        {
            _contributors[i].Contribute(step, _binding.Inputs);
        }

        if (_thread is null)
        {
            _binding.Run(runOptions);
            return;
        }

        _pendingOptions = runOptions;
        _thread.Invoke(_runOnThread!);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            if (_turn is null)
            {
                _binding.Dispose();
            }
            else
            {
                _turn.Release();
            }
        }
    }
}
