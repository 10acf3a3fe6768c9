using StableDiffusion.Cli;

// sdnet: generate images with Stable Diffusion from the command line. `sdnet --help` lists the options.
var command = new CliCommand();
return await command.RunAsync(args).ConfigureAwait(false);
