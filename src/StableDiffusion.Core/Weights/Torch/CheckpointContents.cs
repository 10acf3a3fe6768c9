using System.Globalization;
using System.Numerics;

namespace StableDiffusion.Weights.Torch;

/// <summary>
/// The pickled object flattened into named tensors and values: dictionary keys and list indices joined with dots, the
/// way a state dict names its entries (<c>state_dict.model.diffusion_model.out.2.bias</c>, <c>string_to_param.*</c>).
/// </summary>
internal sealed class CheckpointContents
{
    private const string StateDictKey = "state_dict";

    private readonly string _path;

    /// <summary>How many values each container holds, itself and everything below it included: shared containers are counted once.</summary>
    private readonly Dictionary<object, long> _sizes = new(ReferenceEqualityComparer.Instance);

    private CheckpointContents(string path)
    {
        _path = path;
    }

    /// <summary>Every tensor, by its path from the root.</summary>
    public Dictionary<string, TorchCheckpointTensor> Tensors { get; } = new(StringComparer.Ordinal);

    /// <summary>Every number, string and byte string, by its path from the root.</summary>
    public Dictionary<string, object> Values { get; } = new(StringComparer.Ordinal);

    /// <summary>The tensors of the model's state dict, named relative to it.</summary>
    public Dictionary<string, TorchCheckpointTensor> StateDict { get; private set; } = new(StringComparer.Ordinal);

    /// <summary>Flattens <paramref name="root"/>, checking each tensor against its storage.</summary>
    /// <exception cref="Models.ModelLoadException">Two entries flatten to one name, nesting is too deep or cyclic, a tensor overruns its storage.</exception>
    public static CheckpointContents Flatten(object? root, string path)
    {
        var contents = new CheckpointContents(path);

        // Sized before it is walked: a pickle of a few hundred bytes can share one list 2^40 times over, or hold itself.
        long size = contents.Size(root, 0);
        if (size > CheckpointLimits.MaxFlattenedValues)
        {
            throw CheckpointErrors.Damaged(path, $"its pickle describes {(size == long.MaxValue ? "countless" : size)} values, more than the {CheckpointLimits.MaxFlattenedValues} allowed (containers shared over and over?)");
        }

        contents.Visit(root, "");

        // Training checkpoints wrap the weights: {"state_dict": {...}, "global_step": ...}, sometimes twice over;
        // diffusers unwraps "state_dict" for as long as there is one, and so does this.
        string prefix = "";
        for (object? node = root; node is PickleDict dict && dict.Items.FindLast(item => item.Key is StateDictKey).Value is PickleDict inner; node = inner)
        {
            prefix += StateDictKey + ".";
        }

        contents.StateDict = prefix.Length == 0
            ? contents.Tensors
            : contents.Tensors.Where(entry => entry.Key.StartsWith(prefix, StringComparison.Ordinal))
                .ToDictionary(entry => entry.Key[prefix.Length..], entry => entry.Value, StringComparer.Ordinal);
        return contents;
    }

    /// <summary>The number of values <paramref name="value"/> flattens to (saturating), refusing nesting past the limit and cycles.</summary>
    private long Size(object? value, int depth)
    {
        IReadOnlyList<object?>? children = value switch
        {
            PickleDict dict => [.. dict.Items.Select(item => item.Value)],
            PickleList list => list.Items,
            PickleTuple tuple => tuple.Items,
            _ => null,
        };
        if (children is null)
        {
            return 1;
        }

        if (depth > CheckpointLimits.MaxNestingDepth)
        {
            throw CheckpointErrors.Damaged(_path, $"its values nest more than {CheckpointLimits.MaxNestingDepth} levels deep (or a container holds itself)");
        }

        if (_sizes.TryGetValue(value!, out long known))
        {
            return known;
        }

        long size = 1;
        foreach (object? child in children)
        {
            size = Math.Min(size + Size(child, depth + 1), long.MaxValue / 2);
        }

        _sizes.Add(value!, size);
        return size;
    }

    private void Visit(object? value, string name)
    {
        switch (value)
        {
            case TensorRecord record:
                Claim(name);
                Tensors.Add(name, TorchCheckpointTensor.Create(name, record, _path));
                break;
            case PickleDict dict:
                foreach ((object? key, object? item) in dict.Items)
                {
                    Visit(item, Join(name, Segment(key, name)));
                }

                break;
            case PickleList list:
                VisitSequence(list.Items, name);
                break;
            case PickleTuple tuple:
                VisitSequence(tuple.Items, name);
                break;
            case string or long or BigInteger or double or bool or byte[]:
                Claim(name);
                Values.Add(name, value);
                break;
            default:
                // None, class names, numpy dtypes, opaque values, bare storages: nothing a caller can use.
                break;
        }
    }

    private void VisitSequence(IReadOnlyList<object?> items, string name)
    {
        for (int i = 0; i < items.Count; i++)
        {
            Visit(items[i], Join(name, i.ToString(CultureInfo.InvariantCulture)));
        }
    }

    private void Claim(string name)
    {
        if (Tensors.ContainsKey(name) || Values.ContainsKey(name))
        {
            throw CheckpointErrors.Damaged(_path, $"two of its entries are both named '{Shorten(name)}'");
        }
    }

    /// <summary>A dictionary key as Python prints it; keys that are not numbers, strings or class names are refused.</summary>
    private string Segment(object? key, string parent) => key switch
    {
        string text => text,
        long or BigInteger => string.Create(CultureInfo.InvariantCulture, $"{key}"),
        double number => number.ToString("R", CultureInfo.InvariantCulture),
        bool flag => flag ? "True" : "False",
        null => "None",
        PickleGlobal global => global.FullName,
        _ => throw CheckpointErrors.Damaged(_path,
            $"{(parent.Length == 0 ? "the root dictionary" : $"the dictionary at '{Shorten(parent)}'")} has a key of type {PickleMachine.Describe(key)}, which cannot name an entry"),
    };

    private static string Join(string parent, string segment) => parent.Length == 0 ? segment : $"{parent}.{segment}";

    private static string Shorten(string name) => name.Length <= 200 ? name : $"{name[..200]}...";
}
