using System.Diagnostics.CodeAnalysis;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace StableDiffusion.Models;

/// <summary>The inputs of a UNet call by graph name, bound for one generation: what an <see cref="IUNetInputContributor"/> writes.</summary>
public sealed class UNetInputs
{
    private readonly Dictionary<string, UNetInput> _byName;

    internal UNetInputs(UNetInput[] inputs)
    {
        All = inputs;
        _byName = inputs.ToDictionary(input => input.Name, StringComparer.Ordinal);
    }

    /// <summary>Every input's name, in the graph's order.</summary>
    public IEnumerable<string> Names => All.Select(input => input.Name);

    /// <summary>The input named <paramref name="name"/>.</summary>
    /// <param name="name">The graph input's name.</param>
    /// <exception cref="KeyNotFoundException">The UNet has no such input (the message lists those it has).</exception>
    public UNetInput this[string name] => TryGetValue(name, out UNetInput? input)
        ? input
        : throw new KeyNotFoundException($"The UNet has no input '{name}'; its inputs are {string.Join(", ", All.Select(i => $"'{i.Name}'"))}.");

    /// <summary>The inputs in the graph's order, as the bindings pass them.</summary>
    internal UNetInput[] All { get; }

    /// <summary>Gets the input named <paramref name="name"/>, if the UNet has one.</summary>
    /// <param name="name">The graph input's name.</param>
    /// <param name="input">The input, when found.</param>
    public bool TryGetValue(string name, [MaybeNullWhen(false)] out UNetInput input) => _byName.TryGetValue(name, out input);
}

/// <summary>
/// One UNet input of fixed shape, bound for a generation. Values are written in single precision (or as integers) and
/// converted to the graph's element type (float32, float16, int64, int32) here, once, at the boundary.
/// </summary>
public sealed class UNetInput
{
    internal UNetInput(string name, OrtBuffer buffer)
    {
        Name = name;
        Buffer = buffer;
    }

    /// <summary>The graph input's name.</summary>
    public string Name { get; }

    /// <summary>The graph's element type for it.</summary>
    public TensorElementType ElementType => Buffer.Type;

    /// <summary>Its shape for this generation.</summary>
    public ReadOnlySpan<long> Shape => Buffer.Shape;

    /// <summary>Its number of values (the product of <see cref="Shape"/>).</summary>
    public int Length => Buffer.Length;

    /// <summary>The values last written, in single precision (float32 and float16 inputs).</summary>
    /// <exception cref="InvalidOperationException">The input is an integer one.</exception>
    public ReadOnlySpan<float> Values => Buffer.Single;

    /// <summary>The host buffer it is bound with.</summary>
    internal OrtBuffer Buffer { get; }

    /// <summary>Whether it was written since the binding last copied it to the device.</summary>
    internal bool Changed { get; set; } = true;

    /// <summary>Writes every value, converting to the graph's type (integer inputs truncate toward zero, as numpy's cast does).</summary>
    /// <param name="values">Exactly <see cref="Length"/> values, row-major.</param>
    /// <exception cref="ArgumentException">The count is not <see cref="Length"/>.</exception>
    public void Write(ReadOnlySpan<float> values)
    {
        RequireLength(values.Length);
        Buffer.Write(values);
        Changed = true;
    }

    /// <summary>Writes every value of an integer input (int64 or int32).</summary>
    /// <param name="values">Exactly <see cref="Length"/> values, row-major.</param>
    /// <exception cref="ArgumentException">The count is not <see cref="Length"/>.</exception>
    /// <exception cref="InvalidOperationException">The input is a floating-point one.</exception>
    public void Write(ReadOnlySpan<int> values)
    {
        if (ElementType is not (TensorElementType.Int64 or TensorElementType.Int32))
        {
            throw new InvalidOperationException($"The UNet input '{Name}' is {ElementType}: write it as single-precision values.");
        }

        RequireLength(values.Length);
        Buffer.Write(values);
        Changed = true;
    }

    /// <summary>After the single-precision view was written in place (the sample), makes the graph-typed memory current.</summary>
    internal void CommitSingle()
    {
        Buffer.Commit();
        Changed = true;
    }

    private void RequireLength(int count)
    {
        if (count != Length)
        {
            throw new ArgumentException($"The UNet input '{Name}' of shape [{string.Join(", ", Buffer.Shape)}] takes {Length} values, not {count}.", "values");
        }
    }
}
