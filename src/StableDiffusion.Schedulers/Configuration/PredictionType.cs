namespace StableDiffusion.Schedulers;

/// <summary>What the denoising model predicts (diffusers' <c>prediction_type</c>).</summary>
public enum PredictionType
{
    /// <summary><c>"epsilon"</c>: the noise added to the sample (Stable Diffusion 1.x).</summary>
    Epsilon,

    /// <summary><c>"sample"</c> (also <c>"original_sample"</c>): the denoised sample itself.</summary>
    Sample,

    /// <summary><c>"v_prediction"</c>: the velocity of Imagen Video, section 2.4 (Stable Diffusion 2.x 768 models).</summary>
    VPrediction,
}
