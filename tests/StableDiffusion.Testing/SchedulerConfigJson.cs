namespace StableDiffusion.Testing;

/// <summary>Published scheduler configurations that several test projects start from.</summary>
public static class SchedulerConfigJson
{
    /// <summary>Stable Diffusion 1.5's scheduler/scheduler_config.json (as published, diffusers 0.6 era: no timestep_spacing).</summary>
    public const string StableDiffusion15 = """
        {
          "_class_name": "PNDMScheduler",
          "_diffusers_version": "0.6.0",
          "beta_end": 0.012,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "num_train_timesteps": 1000,
          "set_alpha_to_one": false,
          "skip_prk_steps": true,
          "steps_offset": 1,
          "trained_betas": null,
          "clip_sample": false
        }
        """;
}
