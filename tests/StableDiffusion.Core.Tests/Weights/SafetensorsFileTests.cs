using System.Diagnostics;
using System.Runtime.InteropServices;
using StableDiffusion.Models;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Weights;

[Trait("Area", "WeightsLoading")]
public sealed class SafetensorsFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sd-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Open_ReadsDTypesShapesOffsetsAndMetadata()
    {
        string path = Path.Combine(_folder, "ok.safetensors");
        SafetensorsWriter.Write(path,
            [
                SafetensorsWriter.Tensor.Float32("a.weight", [2, 3], [1, 2, 3, 4, 5, 6]),
                SafetensorsWriter.Tensor.Float16("b", [2], [0.5f, -2]),
                new("scalar", "I64", [], BitConverter.GetBytes(42L)),
                new("empty", "BF16", [0, 4], []),
            ],
            new Dictionary<string, string> { ["format"] = "pt" });

        using SafetensorsFile file = SafetensorsFile.Open(path);

        Assert.Equal(["a.weight", "b", "scalar", "empty"], file.Tensors.Select(t => t.Name));
        SafetensorsTensor a = file.Find("a.weight")!;
        Assert.Equal(("F32", TensorElementType.Float), (a.DType, a.ElementType));
        Assert.Equal([2L, 3], a.Shape);
        Assert.Equal(24, a.Length);
        Assert.Equal(file.DataOffset, a.Offset);
        Assert.Equal([1f, 2, 3, 4, 5, 6], MemoryMarshal.Cast<byte, float>(file.GetBytes(a)).ToArray());
        Assert.Equal([(Half)0.5f, (Half)(-2f)], MemoryMarshal.Cast<byte, Half>(file.GetBytes(file.Find("b")!)).ToArray());
        Assert.Equal(42L, BitConverter.ToInt64(file.GetBytes(file.Find("scalar")!)));
        Assert.Equal(TensorElementType.BFloat16, file.Find("empty")!.ElementType);
        Assert.Null(file.Find("missing"));
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void Open_TheFixtureVae_ListsItsTensorsWithoutCopyingTheFile()
    {
        Fixtures.Require();
        using SafetensorsFile file = SafetensorsFile.Open(Fixtures.PathOf("tiny-sd/vae/diffusion_pytorch_model.safetensors"));

        SafetensorsTensor conv = file.Find("decoder.conv_in.weight")!;

        Assert.Equal(176, file.Tensors.Count);
        Assert.Equal([16L, 4, 3, 3], conv.Shape);
        Assert.Equal(16 * 4 * 3 * 3 * 4, file.GetBytes(conv).Length);
    }

    public static TheoryData<string, SafetensorsProblem, string> BadHeaders => new()
    {
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]", SafetensorsProblem.InvalidHeader, "its header is not valid JSON (" },
        { "[1, 2]", SafetensorsProblem.InvalidHeader, "its header is a JSON Array, not an object of tensors" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", SafetensorsProblem.InvalidHeader, "tensor 'a' is not an object with a string 'dtype', a 'shape' array and a 'data_offsets' array" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", SafetensorsProblem.InvalidHeader, "tensor 'a' has shape [-2], which are not all non-negative integers" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", SafetensorsProblem.InvalidHeader, "tensor 'a' has 1 data_offsets instead of two (begin, end)" },
        { "{\"__metadata__\": {\"n\": 1}, \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", SafetensorsProblem.InvalidHeader, "its __metadata__ entry 'n' is a JSON Number, not a string" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", SafetensorsProblem.DuplicateName, "its header lists tensor 'a' twice" },
        { "{\"a\": {\"dtype\": \"F48\", \"shape\": [2], \"data_offsets\": [0, 8]}}", SafetensorsProblem.UnknownDType, "tensor 'a' has dtype 'F48', which is not one of BOOL, U8, I8, F8_E4M3, F8_E5M2, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", SafetensorsProblem.OffsetsOutOfRange, "tensor 'a' has data_offsets [0, 16], past the end of the data (8 bytes after the header): the file is truncated, or its header is wrong" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", SafetensorsProblem.OffsetsOutOfRange, "tensor 'a' has data_offsets [8, 4], which end before they begin" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", SafetensorsProblem.OverlappingTensors, "tensors 'a' and 'b' share bytes 4 to 8 of the data" },
        { "{\"a\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 8]}}", SafetensorsProblem.SizeMismatch, "tensor 'a' is F16[2], which is 4 bytes, but its data_offsets [0, 8] hold 8" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 8], \"data_offsets\": [0, 8]}}", SafetensorsProblem.SizeMismatch, "tensor 'a' is F32[4611686018427387904, 8], which is more bytes than a file can hold, but its data_offsets [0, 8] hold 8" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", SafetensorsProblem.UnusedBytes, "bytes 0 to 4 of the data belong to no tensor" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", SafetensorsProblem.UnusedBytes, "bytes 4 to 8 of the data (the end of the file) belong to no tensor" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void Open_ABadHeader_ThrowsNamingTheFileAndTheProblem(string header, SafetensorsProblem problem, string what)
    {
        string path = Path.Combine(_folder, "bad.safetensors");
        SafetensorsWriter.WriteRaw(path, header, new byte[8]);

        SafetensorsFormatException ex = AssertInvalid(path, problem);

        Assert.StartsWith($"'{path}' is not a valid safetensors file: {what}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_AFileShorterThanTheHeaderLength_ThrowsTruncated()
    {
        string path = Path.Combine(_folder, "short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);

        SafetensorsFormatException ex = AssertInvalid(path, SafetensorsProblem.Truncated);

        Assert.Equal($"'{path}' is not a valid safetensors file: the file has 3 bytes, too few for the 8-byte header length. The file is corrupt or truncated; download it again.", ex.Message);
    }

    [Fact]
    public void Open_AHeaderLengthPastTheEnd_Throws()
    {
        string path = Path.Combine(_folder, "long-header.safetensors");
        SafetensorsWriter.WriteRaw(path, "{}", [], headerLength: 1000);

        SafetensorsFormatException ex = AssertInvalid(path, SafetensorsProblem.HeaderLength);

        Assert.Contains("its header length, 1000 bytes, runs past the end of the file (16 bytes)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_AnAbsurdHeaderLength_Throws()
    {
        string path = Path.Combine(_folder, "absurd.safetensors");
        SafetensorsWriter.WriteRaw(path, "{}", [], headerLength: ulong.MaxValue);

        SafetensorsFormatException ex = AssertInvalid(path, SafetensorsProblem.HeaderLength);

        Assert.Contains("its header length, 18446744073709551615 bytes, is larger than any safetensors header (100000000 bytes at most)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_ATruncatedCopyOfARealFile_ThrowsNamingTheTensorPastTheEnd()
    {
        Fixtures.Require();
        byte[] whole = File.ReadAllBytes(Fixtures.PathOf("tiny-sd/vae/diffusion_pytorch_model.safetensors"));
        string path = Path.Combine(_folder, "cut.safetensors");
        File.WriteAllBytes(path, whole[..(whole.Length - 100)]);

        SafetensorsFormatException ex = AssertInvalid(path, SafetensorsProblem.OffsetsOutOfRange);

        Assert.Contains("past the end of the data", ex.Message, StringComparison.Ordinal);
        Assert.Contains("the file is truncated, or its header is wrong", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_ASparse4GBFileWhoseHeaderLies_FailsFromTheHeaderAlone()
    {
        // A 4 GB file whose data section is one hole: validation must not read it.
        string path = Path.Combine(_folder, "huge.safetensors");
        const long dataLength = 4L << 30;
        SafetensorsWriter.WriteRaw(path, $"{{\"a\": {{\"dtype\": \"F32\", \"shape\": [{dataLength / 4}], \"data_offsets\": [0, {dataLength}]}}, \"b\": {{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}}}", []);
        using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(file.Length + dataLength);
        }

        var clock = Stopwatch.StartNew();
        SafetensorsFormatException ex = AssertInvalid(path, SafetensorsProblem.OverlappingTensors);

        Assert.Contains("tensors 'a' and 'b' share bytes 8 to", ex.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Open_AMissingFile_ThrowsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(Path.Combine(_folder, "absent.safetensors")));

    private static SafetensorsFormatException AssertInvalid(string path, SafetensorsProblem problem)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.Equal(problem, ex.Problem);
        Assert.Equal(path, ex.Path);
        Assert.IsAssignableFrom<ModelLoadException>(ex);
        Assert.EndsWith("The file is corrupt or truncated; download it again.", ex.Message, StringComparison.Ordinal);
        return ex;
    }
}
