// Built by eng/package-smoke-test.sh in a fresh console project that references StableDiffusion.Hub only: the Hub client
// works without the pipelines or ONNX Runtime. No network here, so it reads a snapshot laid out as huggingface_hub writes
// it, offline, and a file the cache lacks must fail with HubOfflineException naming it.
using StableDiffusion.Hub;

const string Repo = "org/model";
const string Commit = "0123456789abcdef0123456789abcdef01234567";
string cache = Directory.CreateTempSubdirectory("hub-smoke").FullName;
string storage = Path.Combine(cache, "models--org--model");
Directory.CreateDirectory(Path.Combine(storage, "refs"));
File.WriteAllText(Path.Combine(storage, "refs", "main"), Commit);
Directory.CreateDirectory(Path.Combine(storage, "snapshots", Commit, "unet"));
File.WriteAllText(Path.Combine(storage, "snapshots", Commit, "unet", "config.json"), "{}");

using var hub = new HubClient(new HubOptions { CacheDirectory = cache, Offline = true });
string config = await hub.DownloadFileAsync(Repo, "unet/config.json");
if (File.ReadAllText(config) != "{}")
{
    Console.Error.WriteLine($"Read the wrong file offline: {config}");
    return 1;
}

try
{
    await hub.DownloadFileAsync(Repo, "vae/config.json");
    Console.Error.WriteLine("A file missing from the cache was found offline.");
    return 1;
}
catch (HubOfflineException ex) when (ex.MissingPaths.Contains("vae/config.json"))
{
    Console.WriteLine($"Offline from the cache: {config}; missing file: {ex.GetType().Name}");
    return 0;
}
finally
{
    Directory.Delete(cache, recursive: true);
}
