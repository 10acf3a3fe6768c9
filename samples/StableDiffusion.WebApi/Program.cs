using StableDiffusion.WebApi;

// A minimal API serving Stable Diffusion: POST /images with a JSON body returns a PNG. See docs/web-api.md.
await using WebApplication app = ImageApi.Build(args);
await app.RunAsync().ConfigureAwait(false);
