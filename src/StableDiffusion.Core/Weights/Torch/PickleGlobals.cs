namespace StableDiffusion.Weights.Torch;

/// <summary>
/// The only globals a checkpoint's pickle may name. Each is looked up by its exact module and name and stands for a
/// <see cref="GlobalKind"/> the pickle machine interprets itself; nothing is imported, called or instantiated, and any
/// other global refuses the file.
/// </summary>
/// <remarks>
/// Beyond torch's tensor records, three groups appear in real Stable Diffusion checkpoints outside the weights:
/// <list type="bullet">
/// <item><c>pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint</c>: Lightning files key their
/// <c>"callbacks"</c> dict by the callback class itself, so the pickle only names the class (GLOBAL, then SETITEMS). It is
/// accepted as an opaque name; a pickle that calls, instantiates or BUILDs it is refused.</item>
/// <item><c>numpy.dtype</c> and <c>numpy.core.multiarray.scalar</c> (<c>numpy._core</c> in numpy 2): a numpy number, pickled
/// as <c>scalar(dtype("f8"), raw bytes)</c>. Both are pure data: the machine decodes the number from its bytes.</item>
/// <item><c>_codecs.encode</c> and <c>builtins.set</c>: how protocol 2 writes Python 3 bytes and sets; decoded as data.</item>
/// </list>
/// Deliberately absent: <c>torch.storage._load_from_bytes</c> (it unpickles a nested stream), <c>torch._tensor._rebuild_from_type_v2</c>
/// (it instantiates a named tensor subclass), numpy arrays (<c>numpy.core.multiarray._reconstruct</c>), and everything else.
/// </remarks>
internal static class PickleGlobals
{
    private static readonly Dictionary<(string Module, string Name), PickleGlobal> Allowed = Build();

    /// <summary>What <paramref name="module"/>.<paramref name="name"/> stands for, or null when the file must be refused.</summary>
    public static PickleGlobal? Resolve(string module, string name) => Allowed.GetValueOrDefault((module, name));

    private static Dictionary<(string, string), PickleGlobal> Build()
    {
        var table = new Dictionary<(string, string), PickleGlobal>();
        void Add(string module, string name, GlobalKind kind, TensorElementType? storageType = null) =>
            table.Add((module, name), new PickleGlobal(module, name, kind, storageType));

        Add("collections", "OrderedDict", GlobalKind.OrderedDict);
        Add("torch._utils", "_rebuild_tensor_v2", GlobalKind.RebuildTensor);
        Add("torch._utils", "_rebuild_parameter", GlobalKind.RebuildParameter);
        Add("torch._utils", "_rebuild_parameter_with_state", GlobalKind.RebuildParameterWithState);
        Add("torch", "Size", GlobalKind.TorchSize);
        Add("builtins", "set", GlobalKind.Set);
        Add("__builtin__", "set", GlobalKind.Set);
        Add("_codecs", "encode", GlobalKind.CodecsEncode);
        Add("numpy", "dtype", GlobalKind.NumpyDtype);
        Add("numpy.core.multiarray", "scalar", GlobalKind.NumpyScalar);
        Add("numpy._core.multiarray", "scalar", GlobalKind.NumpyScalar);
        Add("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", GlobalKind.OpaqueClass);

        // The storage classes torch.save names in storage records (the legacy typed names it still writes).
        Add("torch", "FloatStorage", GlobalKind.Storage, TensorElementType.Float);
        Add("torch", "DoubleStorage", GlobalKind.Storage, TensorElementType.Double);
        Add("torch", "HalfStorage", GlobalKind.Storage, TensorElementType.Float16);
        Add("torch", "BFloat16Storage", GlobalKind.Storage, TensorElementType.BFloat16);
        Add("torch", "LongStorage", GlobalKind.Storage, TensorElementType.Int64);
        Add("torch", "IntStorage", GlobalKind.Storage, TensorElementType.Int32);
        Add("torch", "ShortStorage", GlobalKind.Storage, TensorElementType.Int16);
        Add("torch", "CharStorage", GlobalKind.Storage, TensorElementType.Int8);
        Add("torch", "ByteStorage", GlobalKind.Storage, TensorElementType.UInt8);
        Add("torch", "BoolStorage", GlobalKind.Storage, TensorElementType.Bool);

        // Harmless storage classes of element types the SDK has no use for: named so the refusal says so.
        foreach (string unsupported in (string[])["ComplexFloatStorage", "ComplexDoubleStorage", "QUInt8Storage", "QInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage"])
        {
            Add("torch", unsupported, GlobalKind.Storage);
        }

        return table;
    }
}
