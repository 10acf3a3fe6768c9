namespace StableDiffusion.Lora;

/// <summary>
/// One low-rank update of a LoRA file as stored, before it is matched to a layer of the model: the change to the layer's
/// weight is <c>Alpha / Rank · Up · Down</c>.
/// </summary>
/// <param name="Component">The model component it changes (<c>unet</c>, <c>text_encoder</c>, or <c>text_encoder_2</c> for SDXL files).</param>
/// <param name="Name">The layer's name: a module path (<c>down_blocks.0.attentions.0.proj_in</c>), or in kohya files the
/// same with every dot an underscore (<c>down_blocks_0_attentions_0_proj_in</c>).</param>
/// <param name="IsFlat">Whether <paramref name="Name"/> is kohya's underscore form.</param>
/// <param name="Key">The file's key for the update (without the <c>lora_down</c> / <c>lora_A</c> suffix), for messages.</param>
/// <param name="Down">The down (A) matrix: [rank, in] or a convolution's [rank, in, kh, kw].</param>
/// <param name="DownShape">Its shape.</param>
/// <param name="Up">The up (B) matrix: [out, rank] or [out, rank, 1, 1].</param>
/// <param name="UpShape">Its shape.</param>
/// <param name="Alpha">The scale numerator: the file's alpha, else the rank (a scale of 1, as diffusers and PEFT take it).</param>
internal sealed record LoraEntry(string Component, string Name, bool IsFlat, string Key, float[] Down, long[] DownShape, float[] Up, long[] UpShape, float Alpha)
{
    /// <summary>The rank: the down matrix's rows.</summary>
    public int Rank => (int)DownShape[0];

    /// <summary>The output features: the up matrix's rows.</summary>
    public long OutFeatures => UpShape[0];

    /// <summary>The input features times the kernel size: the down matrix's columns.</summary>
    public long InFeatures => Down.Length / Rank;

    /// <summary>The factor of <c>Up · Down</c>: alpha over rank.</summary>
    public float Scale => Alpha / Rank;
}
