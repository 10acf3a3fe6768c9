namespace StableDiffusion.Schedulers;

/// <summary>
/// The state the multistep solvers (DPM-Solver multistep and singlestep, UniPC, DEIS) carry between steps: the converted
/// model outputs of the last steps, in a fixed array whose buffers are reused (the buffer of the entry that drops out
/// holds the next output, so steps allocate nothing once warm), and diffusers' <c>lower_order_nums</c>, the count of
/// steps that lowers the order of the first ones.
/// </summary>
internal sealed class ModelOutputHistory
{
    private readonly float[]?[] _outputs;
    private readonly int _solverOrder;

    /// <summary>Creates an empty history.</summary>
    /// <param name="solverOrder">The solver order: how many outputs a step reads.</param>
    /// <param name="spareSlot">
    /// Whether to keep one output more, so that the history a step reads stays intact while the next output is converted
    /// (UniPC's corrector).
    /// </param>
    public ModelOutputHistory(int solverOrder, bool spareSlot = false)
    {
        _solverOrder = solverOrder;
        _outputs = new float[]?[spareSlot ? solverOrder + 1 : solverOrder];
    }

    /// <summary>How many outputs of this run are held, up to the solver order.</summary>
    public int Count { get; private set; }

    /// <summary>How many steps of this run are complete, up to the solver order (diffusers' <c>lower_order_nums</c>).</summary>
    public int LowerOrderNums { get; private set; }

    /// <summary>The output of <paramref name="stepsBack"/> steps ago: 0 is the newest.</summary>
    public float[] this[int stepsBack] => _outputs[^(stepsBack + 1)]!;

    /// <summary>
    /// The buffer for the next output: the oldest entry's when it has <paramref name="length"/> elements, else a new one.
    /// The history is unchanged until <see cref="Append"/>.
    /// </summary>
    public float[] NextBuffer(int length) =>
        _outputs[0] is { } buffer && buffer.Length == length ? buffer : new float[length];

    /// <summary>Drops the oldest output and appends <paramref name="newest"/>.</summary>
    public void Append(float[] newest)
    {
        Array.Copy(_outputs, 1, _outputs, 0, _outputs.Length - 1);
        _outputs[^1] = newest;
        Count = System.Math.Min(Count + 1, _solverOrder);
    }

    /// <summary>Appends the <see cref="NextBuffer"/> and returns it for the caller to fill with the newest output.</summary>
    public float[] AppendNext(int length)
    {
        float[] newest = NextBuffer(length);
        Append(newest);
        return newest;
    }

    /// <summary>Counts a completed step towards the full order.</summary>
    public void CompleteStep() => LowerOrderNums = System.Math.Min(LowerOrderNums + 1, _solverOrder);

    /// <summary>
    /// The order of a DPM-Solver or DEIS multistep step: 1 in the first step and where <paramref name="firstOrder"/>, at
    /// most 2 in the second step and where <paramref name="atMostSecondOrder"/>, else the solver order.
    /// </summary>
    public int StepOrder(bool firstOrder, bool atMostSecondOrder) =>
        _solverOrder == 1 || LowerOrderNums < 1 || firstOrder ? 1
        : _solverOrder == 2 || LowerOrderNums < 2 || atMostSecondOrder ? 2
        : 3;

    /// <summary>Starts a new run; the buffers are kept for reuse.</summary>
    public void Clear()
    {
        Count = 0;
        LowerOrderNums = 0;
    }
}
