using Microsoft.ML.OnnxRuntime;

namespace StableDiffusion.ExecutionProviders.Families;

/// <summary>ONNX Runtime's CPU provider: always present, and always last in line for what other providers do not take.</summary>
internal sealed class CpuProvider() : ExecutionProviderFamily("CPUExecutionProvider", ["CPU"], "Microsoft.ML.OnnxRuntime")
{
    /// <summary>
    /// Attention through <c>MultiHeadAttention</c>, whose CPU kernel never holds the whole probability matrix: for 512x512
    /// images (batch 2) the tiny UNet built from weights peaked at 129 MiB instead of 4,387 MiB with MatMul and Softmax, and
    /// a call took 2.1 s instead of 2.8 (docs/models.md); its export, rewritten at load, peaked at 288 MiB instead of 4,608
    /// (docs/performance.md). The outputs agree within 1e-5 relative (UNet2DConditionModelTests, MultiHeadAttentionFusionTests).
    /// </summary>
    public override bool FusesAttentionByDefault => true;

    /// <summary>
    /// ONNX Runtime's own default: on 16 cores the full-size SD 1.5 UNet (float32, 512x512, batch 2) took 1.78 s a call with
    /// spinning threads and 2.84 s with sleeping ones, a 20-step image 40.8 s instead of 61.4 s (2026-12-01,
    /// docs/benchmarks/results/2026-12-01). On 2 cores the tiny model showed no difference beyond the machine's noise.
    /// </summary>
    public override bool SpinsByDefault => true;

    public override void Append(SessionOptions options, ExecutionProvider provider)
    {
        // Nothing to append: a session without another provider runs on the CPU.
    }
}
