#!/usr/bin/env python3
"""Writes a diffusers reference (reference.json + reference.npz) for the SDK's parity tests, from a cases file.

The output has exactly the schema of ../shared/fixtures/reference: the parity tests are data-driven, so every case
written here is checked by them without new test code. Each section of the cases file (see cases.json beside this
script, and README.md) lists what to run; this script runs it with diffusers itself and records what diffusers gives.

Needs torch, transformers, numpy, Pillow, safetensors and a diffusers source tree (DIFFUSERS_SRC, its src/ folder is
put on sys.path). The GPU machine has all but diffusers (carry a checkout, see README.md). Sections that need only the
schedulers (`--only schedulers rng`) also run with an older torch and no transformers.

Usage: generate.py CASES.json OUT_DIR [--fixtures DIR] [--only SECTION ...]
"""
import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("cases", help="the cases file (JSON)")
ap.add_argument("out", help="the folder to write reference.json and reference.npz into")
ap.add_argument("--fixtures", default=os.environ.get("SD_FIXTURES", str(Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures")),
                help="the fixtures folder holding the models the cases name (default: SD_FIXTURES or ../shared/fixtures)")
ap.add_argument("--only", nargs="*", help="write only these sections")
ap.add_argument("--weights", help="the folder the adapter files of the cases are read from (default: the output folder)")
ap.add_argument("--tables", action="store_true", help="also write torch's float32 schedule tables to tables.npz beside the output")
args = ap.parse_args()

if os.environ.get("DIFFUSERS_SRC"):
    sys.path.insert(0, str(Path(os.environ["DIFFUSERS_SRC"]) / "src"))

import torch  # noqa: E402

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True, warn_only=True)

CASES = json.loads(Path(args.cases).read_text())
FIXTURES = Path(args.fixtures).resolve()
OUT = Path(args.out)
# Model paths in the output are relative to the reference folder, which lives in the fixtures folder
# (fixtures/reference), as in the published reference.
ARRAYS: dict[str, np.ndarray] = {}


def wanted(section: str) -> bool:
    return section in CASES and (not args.only or section in args.only)


def put(name: str, array) -> str:
    """Stores an array under `name` and returns the name, for reference.json."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    if name in ARRAYS:
        raise SystemExit(f"array name used twice: {name}")
    ARRAYS[name] = np.ascontiguousarray(array)
    return name


def model_folder(relative: str) -> Path:
    """A model path as the reference gives it (relative to fixtures/reference) as a real folder."""
    return (FIXTURES / "reference" / relative).resolve()


def versions() -> dict:
    found = {"torch": torch.__version__, "numpy": np.__version__}
    for module in ("transformers", "diffusers", "onnxruntime", "peft"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing optional module is simply not listed
            pass
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Schedulers: a fixed dummy model, so every scheduler's arithmetic is checked without a UNet.
# ---------------------------------------------------------------------------------------------------------------------
DUMMY_MODEL = "model(x, t) = 0.2*x*cos(t/500) + 0.3*sin(x) + 0.01*(t/1000), x = scale_model_input(sample, t)"


def dummy_model(x: torch.Tensor, t) -> torch.Tensor:
    t = torch.as_tensor(t).to(torch.float32)
    return 0.2 * x * torch.cos(t / 500) + 0.3 * torch.sin(x) + 0.01 * (t / 1000)


def scheduler_class(name: str):
    import diffusers.schedulers as schedulers
    return getattr(schedulers, name)


def make_scheduler(spec: dict, base_config: dict):
    return scheduler_class(spec["class"]).from_config({**base_config, **spec.get("overrides", {})})


def takes_generator(scheduler) -> bool:
    return "generator" in inspect.signature(scheduler.step).parameters


def schedulers_section(spec: dict) -> dict:
    base = spec["base_config"]
    by_key = spec["by_key"]
    x0 = torch.randn(tuple(spec["x0_shape"]), generator=torch.Generator().manual_seed(spec["x0_seed"]))
    section = {
        "base_config": base,
        "dummy_model": f"{DUMMY_MODEL}; x0 = torch.randn({tuple(spec['x0_shape'])}, Generator().manual_seed({spec['x0_seed']})); "
                       f"sample0 = x0*init_noise_sigma; stochastic steps use step(..., generator=Generator().manual_seed({spec['generator_seed']}))",
        "x0": put("sched/x0", x0),
        "note": "Each case: cls.from_config({**base_config, **overrides}) (keys absent from that dict take the class defaults); "
                "set_timesteps(steps); sample = x0 * init_noise_sigma; per step t: model_inputs[i] = scale_model_input(sample, t); "
                "sample = prev_samples[i] = step(model(model_inputs[i], t), t, sample, **step_kwargs).prev_sample; stochastic cases "
                f"pass generator=torch.Generator().manual_seed({spec['generator_seed']}) (one generator for the whole trajectory) to "
                "every step. Arrays: sched/<name>/model_inputs, sched/<name>/prev_samples (stacked over steps), sched/<name>/sigmas "
                "(float64) where the scheduler has sigmas. errors: the cases diffusers itself cannot run (the SDK must refuse them with an exception).",
        "cases": [],
        "errors": [],
        "by_key": by_key,
    }
    for run in spec["runs"]:
        keys = list(by_key) if run["keys"] == ["*"] else run["keys"]
        for key in keys:
            for steps in run["steps"]:
                entry = by_key[key]
                name = f"{key}/{steps}"
                scheduler = make_scheduler(entry, base)
                try:
                    scheduler.set_timesteps(steps)
                    stochastic = takes_generator(scheduler)
                    generator = torch.Generator().manual_seed(spec["generator_seed"]) if stochastic else None
                    sample = x0 * scheduler.init_noise_sigma
                    inputs, samples = [], []
                    for t in scheduler.timesteps:
                        model_input = scheduler.scale_model_input(sample, t)
                        inputs.append(model_input)
                        kwargs = dict(entry.get("step_kwargs", {}))
                        if stochastic:
                            kwargs["generator"] = generator
                        sample = scheduler.step(dummy_model(model_input, t), t, sample, **kwargs).prev_sample
                        samples.append(sample)
                except Exception as error:  # noqa: BLE001 - diffusers cannot run this case: the SDK must refuse it too
                    section["errors"].append({"name": name, "class": entry["class"], "overrides": entry.get("overrides", {}),
                                              "steps": steps, "error": f"{type(error).__name__}: {error}"})
                    continue
                case = {
                    "name": name,
                    "class": entry["class"],
                    "overrides": entry.get("overrides", {}),
                    "step_kwargs": entry.get("step_kwargs", {}),
                    "steps": steps,
                    "timesteps": [float(t) for t in scheduler.timesteps],
                    "init_noise_sigma": float(scheduler.init_noise_sigma),
                    "config": json.loads(json.dumps(dict(scheduler.config), default=str)),
                    "stochastic": stochastic,
                    "final_sum": float(sample.sum()),
                    "final_mean": float(sample.mean()),
                }
                put(f"sched/{name}/model_inputs", torch.stack(inputs))
                put(f"sched/{name}/prev_samples", torch.stack(samples))
                if getattr(scheduler, "sigmas", None) is not None:
                    put(f"sched/{name}/sigmas", np.asarray(scheduler.sigmas, dtype=np.float64))
                section["cases"].append(case)
    return section


# ---------------------------------------------------------------------------------------------------------------------
# Tokenizer and RNG.
# ---------------------------------------------------------------------------------------------------------------------
def tokenizer_section(spec: dict) -> dict:
    from transformers import CLIPTokenizer
    tokenizer = CLIPTokenizer.from_pretrained(str(model_folder(spec["model"]) / "tokenizer"))
    cases = []
    for text in spec["texts"]:
        padded = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids
        cases.append({"text": text, "padded": padded, "raw": tokenizer(text).input_ids})
    return {"class": type(tokenizer).__name__,
            "note": "padded = tokenizer(text, padding=\"max_length\", max_length=77, truncation=True).input_ids; raw = tokenizer(text).input_ids (no truncation)",
            "cases": cases}


def rng_section(spec: list) -> dict:
    cases = []
    for case in spec:
        device = case["device"]
        if device == "cuda" and not torch.cuda.is_available():
            raise SystemExit(f"rng case {case['name']} needs CUDA")
        generator = torch.Generator(device).manual_seed(case["seed"])
        dtype = getattr(torch, case["dtype"])
        names = []
        for i, shape in enumerate(case["shapes"]):
            names.append(put(f"rng/{case['name']}/{i}", torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device).float()))
        cases.append({**case, "arrays": names})
    return {"note": "torch.randn(shape, generator=torch.Generator(device).manual_seed(seed), dtype) called once per listed shape, in order, "
                    "on one generator; arrays are stored as float32",
            "cases": cases}


# ---------------------------------------------------------------------------------------------------------------------
# Pipelines.
# ---------------------------------------------------------------------------------------------------------------------
_PIPELINES: dict = {}


def torch_pipeline(kind: str, torch_model: str, unet: str | None = None):
    """diffusers' pipeline of `kind` over the PyTorch weights (diffusers layout), paths relative to fixtures/reference."""
    key = (kind, torch_model, unet)
    if key not in _PIPELINES:
        import diffusers
        base = _PIPELINES.get(("text", torch_model, None))
        if base is None:
            base = diffusers.StableDiffusionPipeline.from_pretrained(str(model_folder(torch_model)), torch_dtype=torch.float32)
            base.set_progress_bar_config(disable=True)
            _PIPELINES[("text", torch_model, None)] = base
        components = dict(base.components)
        if unet is not None:
            components["unet"] = diffusers.UNet2DConditionModel.from_pretrained(str(model_folder(unet)), torch_dtype=torch.float32)
        cls = {"text": diffusers.StableDiffusionPipeline, "img2img": diffusers.StableDiffusionImg2ImgPipeline,
               "inpaint": diffusers.StableDiffusionInpaintPipeline}[kind]
        pipe = cls(**components)
        pipe.set_progress_bar_config(disable=True)
        _PIPELINES[key] = pipe
    return _PIPELINES[key]


def recorder(seen: list):
    def on_step_end(pipe, step, timestep, callback_kwargs):
        seen.append(float(timestep))
        return callback_kwargs
    return on_step_end


def common_call(case: dict, schedulers: dict, pipe) -> dict:
    """The call arguments every pipeline case shares (diffusers' names), with the case's scheduler installed."""
    pipe.scheduler = make_scheduler(schedulers["by_key"][case["scheduler"]], schedulers["base_config"])
    call = {
        "prompt": case["prompt"],
        "num_inference_steps": case["steps"],
        "guidance_scale": case["guidance"],
        "num_images_per_prompt": case["num_images_per_prompt"],
        "generator": torch.Generator("cpu").manual_seed(case["seed"]),
        "output_type": "np",
    }
    for key in ("negative_prompt", "eta", "guidance_rescale"):
        if key in case:
            call[key] = case[key]
    return call


def prompt_count(case: dict) -> int:
    return len(case["prompt"]) if isinstance(case["prompt"], list) else 1


def record_embeddings(prefix: str, case: dict, pipe, lora_scale: float | None = None) -> None:
    positive, negative = pipe.encode_prompt(case["prompt"], "cpu", case["num_images_per_prompt"], case["guidance"] > 1,
                                            case.get("negative_prompt"), lora_scale=lora_scale)
    put(f"{prefix}/prompt_embeds", positive)
    if negative is not None:
        put(f"{prefix}/negative_prompt_embeds", negative)


def run_text_case(pipe, case: dict, schedulers: dict, prefix: str, lora_scale: float | None = None) -> dict:
    """One text-to-image case: the images, flags, initial latents, embeddings and timesteps diffusers gives (with a per-call
    LoRA scale, diffusers' cross_attention_kwargs={"scale": s}, when given)."""
    seen: list = []
    call = common_call(case, schedulers, pipe)
    call.update(height=case["height"], width=case["width"], callback_on_step_end=recorder(seen))
    if lora_scale is not None:
        call["cross_attention_kwargs"] = {"scale": lora_scale}
    out = pipe(**call)
    rows = prompt_count(case) * case["num_images_per_prompt"]
    put(f"{prefix}/torch_images", out.images)
    put(f"{prefix}/init_latents", torch.randn((rows, 4, case["height"] // 8, case["width"] // 8),
                                               generator=torch.Generator("cpu").manual_seed(case["seed"])))
    record_embeddings(prefix, case, pipe, lora_scale)
    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    if seen != timesteps:
        raise RuntimeError(f"the loop saw {seen}, the scheduler lists {timesteps}")
    return {**case, "torch_nsfw": [bool(f) for f in out.nsfw_content_detected], "timesteps": timesteps}


FAILED: list[str] = []


def run_cases(section: str, cases: list, run) -> list:
    """Runs every case; one that diffusers cannot run is reported and fails the whole run at the end (fix the cases file)."""
    done = []
    for case in cases:
        try:
            done.append(run(case))
        except Exception as error:  # noqa: BLE001 - reported below; the reference is not written
            FAILED.append(f"{section}/{case['name']}: {type(error).__name__}: {error}")
            print(f"diffusers failed: {FAILED[-1]}", file=sys.stderr)
    return done


PIPELINE_NOTE = ("torch_images: diffusers StableDiffusionPipeline on torch_model (the PyTorch weights of the ONNX model), "
                 "generator=torch.Generator(\"cpu\").manual_seed(seed), output_type=\"np\" (NHWC floats in [0,1]), safety checker on. "
                 "init_latents = torch.randn((batch*num_images_per_prompt, 4, height/8, width/8), generator seeded with seed), before "
                 "scaling by init_noise_sigma. prompt_embeds / negative_prompt_embeds: as encode_prompt returns them. The tiny safety "
                 "checker has thresholds tuned so that some images are flagged: *_nsfw lists the flags; flagged images are all zeros. "
                 "scheduler names refer to the scheduler cases (class + overrides); prompt and negative_prompt may be lists (one "
                 "negative per prompt); guidance_rescale and eta are passed to the pipeline call as in diffusers.")


def pipeline_section(spec: dict, schedulers: dict) -> dict:
    pipe = torch_pipeline("text", spec["torch_model"])
    cases = run_cases("pipeline", spec["cases"], lambda c: run_text_case(pipe, c, schedulers, f"pipe/{c['name']}"))
    return {"model": spec["model"], "torch_model": spec["torch_model"], "note": PIPELINE_NOTE, "cases": cases}


def single_file_section(spec: dict, schedulers: dict) -> dict:
    """diffusers' from_single_file on an original-layout checkpoint, the components it lacks taken from a base model."""
    import diffusers
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor
    base = model_folder(spec["base_model"])
    checker = StableDiffusionSafetyChecker.from_pretrained(str(base / "safety_checker"), torch_dtype=torch.float32)
    extractor = CLIPImageProcessor.from_pretrained(str(base / "feature_extractor"))
    pipe = diffusers.StableDiffusionPipeline.from_single_file(
        str(model_folder(spec["file"])), config=str(base), torch_dtype=torch.float32, local_files_only=True,
        safety_checker=checker, feature_extractor=extractor)
    pipe.set_progress_bar_config(disable=True)
    cases = run_cases("single_file", spec["cases"], lambda c: run_text_case(pipe, c, schedulers, f"single/{c['name']}"))
    edits = []
    if spec.get("edit_cases"):
        _PIPELINES[("text", spec["file"], None)] = pipe
        edits = run_cases("single_file", spec["edit_cases"], lambda c: run_edit_case({**c, "torch_model": spec["file"]}, schedulers, "single"))
    return {"file": spec["file"], "base_model": spec["base_model"], "torch_dtype": "float32",
            "note": "diffusers StableDiffusionPipeline.from_single_file(file, config=base_model, torch_dtype=float32), the safety "
                    "checker and feature extractor loaded from base_model (from_single_file does not load them itself); the "
                    "weights are the file's float16 values computed in float32. Cases as in the pipeline section; edit_cases as in "
                    "the edit section (arrays under single/<name>/).",
            "cases": cases, "edit_cases": edits}


def test_image(spec: dict) -> np.ndarray:
    """A deterministic picture (uint8 HxWx3): smooth gradients with a disc and a bar, so that the VAE sees structure."""
    h, w = spec["height"], spec["width"]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1)], axis=-1) * 255
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(h, w) * 0.2) ** 2
    image[disc] = [230, 40, 60]
    image[int(h * 0.7):int(h * 0.8), int(w * 0.1):int(w * 0.9)] = [20, 200, 90]
    noise = np.random.RandomState(spec.get("seed", 0)).randint(-12, 13, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def edit_image(spec: dict) -> np.ndarray:
    """A picture or mask made here, or an array taken from an existing reference (to reproduce its cases)."""
    if spec["kind"] == "array":
        return np.load(model_folder(spec["npz"]))[spec["name"]]
    return test_mask(spec) if spec["kind"] == "mask" else test_image(spec)


def test_mask(spec: dict) -> np.ndarray:
    """A deterministic mask (uint8 HxW, 255 = repaint): a rectangle, with a soft edge when asked."""
    h, w = spec["height"], spec["width"]
    mask = np.zeros((h, w), dtype=np.uint8)
    top, left, bottom, right = spec.get("box", [h // 4, w // 4, 3 * h // 4, 3 * w // 4])
    mask[top:bottom, left:right] = 255
    return mask


EDIT_IMAGES: dict[str, str] = {}


def run_edit_case(case: dict, schedulers: dict, prefix: str) -> dict:
    """One image-to-image or inpainting case, its picture and mask named from the edit section's images."""
    from PIL import Image
    kind = case["kind"]
    pipe = torch_pipeline(kind, case["torch_model"], case.get("torch_unet"))
    seen: list = []
    call = common_call(case, schedulers, pipe)
    call.update(image=Image.fromarray(ARRAYS[EDIT_IMAGES[case["image"]]]), strength=case["strength"], callback_on_step_end=recorder(seen))
    if kind == "inpaint":
        call["mask_image"] = Image.fromarray(ARRAYS[EDIT_IMAGES[case["mask"]]])
    out = pipe(**call)
    put(f"{prefix}/{case['name']}/torch_images", out.images)
    written = {k: v for k, v in case.items() if k not in ("image", "mask")}
    written.update(image=EDIT_IMAGES[case["image"]], mask=EDIT_IMAGES[case["mask"]] if case.get("mask") else None,
                   unet=pipe.unet.config.in_channels, timesteps_run=seen, torch_nsfw=[bool(f) for f in out.nsfw_content_detected])
    return written


def edit_section(spec: dict, schedulers: dict) -> dict:
    for name, image_spec in spec["images"].items():
        EDIT_IMAGES[name] = put(f"edit/{name}", edit_image(image_spec))
    cases = run_cases("edit", spec["cases"], lambda c: run_edit_case(c, schedulers, "edit"))
    section = {
        "note": "Image-to-image and inpainting, computed with diffusers StableDiffusionImg2ImgPipeline / StableDiffusionInpaintPipeline "
                "(PyTorch weights identical to the ONNX model named by each case: torch_model, and torch_unet where the UNet is "
                "replaced), prompt as given (a string or a list, negative_prompt likewise), generator=torch.Generator(\"cpu\")."
                "manual_seed(seed), output_type=\"np\", safety checker on. The input picture (uint8 HxWx3) and mask (uint8 HxW, "
                "255 = repaint) are arrays named by the case; the pipelines received them as PIL images. The generator is consumed "
                "in diffusers order (VAE posterior sample of the input image, then the noise, then any stochastic scheduler noise). "
                "timesteps_run lists the timesteps the UNet saw. torch_images are NHWC in [0,1]; *_nsfw the flags.",
        "cases": cases,
    }
    if "variants_check" in spec:
        check = spec["variants_check"]
        pipe = torch_pipeline("text", check["torch_model"])
        pipe.scheduler = make_scheduler(schedulers["by_key"][check["scheduler"]], schedulers["base_config"])
        latents = torch.randn((1, 4, check["height"] // 8, check["width"] // 8), generator=torch.Generator("cpu").manual_seed(check["seed"]))
        out = pipe(check["prompt"], num_inference_steps=check["steps"], latents=latents.clone(), height=check["height"],
                   width=check["width"], output_type="np")
        section["variants_check"] = {
            "model": check["model"],
            "torch_model": check["torch_model"],
            "note": "txt2img of the prompt with the scheduler, steps and guidance 7.5 on the variants export (int64 input_ids, int64 "
                    "timestep of shape [batch], external weights, latent_parameters VAE encoder), latents=init_latents: must give torch_images.",
            "prompt": check["prompt"],
            "scheduler": check["scheduler"],
            "steps": check["steps"],
            "init_latents": put("edit/variants_check/init_latents", latents),
            "torch_images": put("edit/variants_check/torch_images", out.images),
        }
    return section


def safety_preprocessing_section(spec: dict) -> dict:
    from transformers import CLIPImageProcessor
    processor = CLIPImageProcessor.from_pretrained(str(model_folder(spec["model"]) / "feature_extractor"))
    images = np.random.RandomState(spec["seed"]).rand(*spec["shape"]).astype(np.float32)
    from diffusers.image_processor import VaeImageProcessor
    clip_input = processor(VaeImageProcessor.numpy_to_pil(images), return_tensors="pt").pixel_values
    return {"note": "clip_input = CLIPImageProcessor (feature_extractor/preprocessor_config.json) applied to numpy_to_pil(ref_images): PIL "
                    "round to uint8, bicubic resize of the shortest edge to 224, center crop 224, rescale 1/255, normalize with CLIP "
                    f"mean/std; NCHW. ref_images = numpy RandomState({spec['seed']}).rand{tuple(spec['shape'])} as float32.",
            "images": put("safety/ref_images", images),
            "clip_input": put("safety/clip_input", clip_input)}


# ---------------------------------------------------------------------------------------------------------------------
# Adapters and prompts (LoRA, textual inversion, weighted and long prompts, clip skip).
# ---------------------------------------------------------------------------------------------------------------------
def reference_file(relative: str) -> Path:
    """A file named relative to the reference folder being written (its weights/ come with it)."""
    return (Path(args.weights) if args.weights else OUT) / relative


def lora_modules(state: dict, model) -> dict:
    """{module name in `model`: {"A", "B", "alpha"}} from a LoRA file in diffusers/PEFT or kohya form."""
    names = {n for n, _ in model.named_modules()}
    flattened = {n.replace(".", "_"): n for n in names}
    def module_of(path: str) -> str:
        for candidate in (path, path.removeprefix("text_model."), "text_model." + path):
            if candidate in names:
                return candidate
        raise KeyError(f"no module {path} in {type(model).__name__}")
    found: dict = {}
    for key, tensor in state.items():
        if ".lora_A." in key or ".lora_B." in key:
            module, part = key.split(".lora_")[0], "A" if ".lora_A." in key else "B"
        elif ".lora_down." in key or ".lora_up." in key:
            module, part = key.split(".lora_")[0], "A" if ".lora_down." in key else "B"
        elif key.endswith(".alpha"):
            module, part = key[: -len(".alpha")], "alpha"
        else:
            raise KeyError(f"unexpected LoRA key {key}")
        found.setdefault(module, {})[part] = tensor
    result = {}
    for module, parts in found.items():
        if module.startswith(("lora_unet_", "lora_te_")):
            flat = module.split("_", 2)[2]
            path = next((flattened[c] for c in (flat, "text_model_" + flat, flat.removeprefix("text_model_")) if c in flattened), None)
            if path is None:
                raise KeyError(f"no module for {module}")
        else:
            path = module_of(module.split(".", 1)[1])
        result[path] = parts
    return result


def split_lora_file(path: Path) -> dict:
    """The file's tensors per model: {"unet": {...}, "text_encoder": {...}}."""
    from safetensors.torch import load_file
    state = load_file(str(path))
    per_model = {"unet": {}, "text_encoder": {}}
    for key, tensor in state.items():
        model = "unet" if key.startswith(("unet.", "lora_unet_")) else "text_encoder"
        per_model[model][key] = tensor
    return per_model


def add_lora(pipe, path: Path, adapter: str) -> None:
    """Adds the file's LoRA to the UNet and text encoder as PEFT adapter `adapter`, in memory (diffusers 0.40 with
    transformers 5.6+ cannot load a kohya text-encoder LoRA by itself: it looks for text_encoder.text_model)."""
    from peft import LoraConfig
    for model_name, state in split_lora_file(path).items():
        if not state:
            continue
        model = getattr(pipe, model_name)
        modules = lora_modules(state, model)
        ranks = {m: p["A"].shape[0] for m, p in modules.items()}
        alphas = {m: float(p["alpha"]) if "alpha" in p else float(p["A"].shape[0]) for m, p in modules.items()}
        rank = next(iter(ranks.values()))
        config = LoraConfig(r=rank, lora_alpha=alphas[next(iter(alphas))], target_modules=sorted(modules),
                            rank_pattern={m: r for m, r in ranks.items()}, alpha_pattern={m: a for m, a in alphas.items()},
                            init_lora_weights=False)
        model.add_adapter(config, adapter_name=adapter)
        for name, parts in modules.items():
            layer = model.get_submodule(name)
            layer.lora_A[adapter].weight.data.copy_(parts["A"].reshape(layer.lora_A[adapter].weight.shape))
            layer.lora_B[adapter].weight.data.copy_(parts["B"].reshape(layer.lora_B[adapter].weight.shape))


def activate_loras(pipe, names: list, weights: list) -> None:
    from diffusers.utils.peft_utils import set_weights_and_activate_adapters
    for model in (pipe.unet, pipe.text_encoder):
        present = [(n, w) for n, w in zip(names, weights) if n in getattr(model, "peft_config", {})]
        if present:
            set_weights_and_activate_adapters(model, [n for n, _ in present], [w for _, w in present])


def remove_loras(pipe) -> None:
    for model in (pipe.unet, pipe.text_encoder):
        for name in list(getattr(model, "peft_config", {})):
            model.delete_adapters(name) if hasattr(model, "delete_adapters") else model.delete_adapter(name)


def lora_section(spec: dict, schedulers: dict) -> dict:
    pipe = torch_pipeline("text", spec["torch_model"])
    def run(case: dict) -> dict:
        remove_loras(pipe)
        for lora in case["loras"]:
            add_lora(pipe, reference_file(lora["file"]), lora["adapter"])
        activate_loras(pipe, [l["adapter"] for l in case["loras"]], [l.get("weight", 1.0) for l in case["loras"]])
        call_case = {k: v for k, v in case.items() if k not in ("loras", "scale")}
        result = run_text_case(pipe, call_case, schedulers, f"lora/{case['name']}", lora_scale=case.get("scale"))
        remove_loras(pipe)
        return {**case, **{k: v for k, v in result.items() if k in ("torch_nsfw", "timesteps")}}
    cases = run_cases("lora", spec["cases"], run)
    return {"model": spec["model"], "torch_model": spec["torch_model"],
            "note": "LoRA adapters from the files named (paths relative to the reference folder), added to diffusers' UNet and text "
                    "encoder as PEFT adapters in memory with the file's ranks and alphas (diffusers 0.40 with transformers 5.6+ "
                    "cannot load a kohya text-encoder LoRA itself), activated with set_adapters(names, weights); scale is the "
                    "per-call cross_attention_kwargs={'scale': s}. Otherwise as the pipeline section; arrays under lora/<name>/.",
            "cases": cases}


def textual_inversion_section(spec: dict, schedulers: dict) -> dict:
    pipe = torch_pipeline("text", spec["torch_model"])
    def run(case: dict) -> dict:
        for embedding in case["embeddings"]:
            pipe.load_textual_inversion(str(reference_file(embedding["file"])), token=embedding.get("token"))
        try:
            call_case = {k: v for k, v in case.items() if k != "embeddings"}
            result = run_text_case(pipe, call_case, schedulers, f"ti/{case['name']}")
        finally:
            pipe.unload_textual_inversion()
        return {**case, **{k: v for k, v in result.items() if k in ("torch_nsfw", "timesteps")}}
    cases = run_cases("textual_inversion", spec["cases"], run)
    return {"model": spec["model"], "torch_model": spec["torch_model"],
            "note": "pipe.load_textual_inversion(file, token=token) for each embedding (paths relative to the reference folder; a "
                    "token of several vectors is written in prompts once and expanded by diffusers to token, token_1, ...), then "
                    "the case as in the pipeline section, then unload_textual_inversion(); arrays under ti/<name>/.",
            "cases": cases}


def expose_text_model(encoder) -> None:
    """The community pipeline reaches for text_encoder.text_model.final_layer_norm, which transformers 5.6+ flattened away."""
    import types
    if isinstance(getattr(encoder, "text_model", None), torch.nn.Module):
        return
    norm = next(m for n, m in encoder.named_modules() if n.endswith("final_layer_norm"))
    object.__setattr__(encoder, "text_model", types.SimpleNamespace(final_layer_norm=norm))


def lpw_pipeline(pipe):
    import importlib.util
    source = Path(os.environ["DIFFUSERS_SRC"]) / "examples" / "community" / "lpw_stable_diffusion.py"
    spec = importlib.util.spec_from_file_location("lpw_stable_diffusion", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expose_text_model(pipe.text_encoder)
    accepted = inspect.signature(module.StableDiffusionLongPromptWeightingPipeline.__init__).parameters
    lpw = module.StableDiffusionLongPromptWeightingPipeline(**{k: v for k, v in pipe.components.items() if k in accepted})
    lpw.set_progress_bar_config(disable=True)
    return lpw


def text_encoder_with_overrides(pipe, overrides: dict) -> dict:
    """A copy of the pipeline's text encoder with some tensors replaced by seeded random values; returns the array names.
    The tiny model's final layer norm is the identity (weight 1, bias 0), so its embeddings average to ~1e-9 and the
    long-prompt pipeline's mean restoration (a ratio of two means) would divide noise by noise; a final layer norm with
    weights makes that ratio well conditioned, as in real models."""
    import copy
    encoder = copy.deepcopy(pipe.text_encoder)
    names = dict(encoder.named_parameters())
    recorded = {}
    generator = torch.Generator().manual_seed(overrides["seed"])
    for key, scale in overrides["tensors"].items():
        parameter = next(p for n, p in names.items() if n == key or n == key.removeprefix("text_model.") or "text_model." + n == key)
        parameter.data.copy_(parameter.data + torch.randn(parameter.shape, generator=generator) * scale)
        recorded[key] = put(f"lpw/text_encoder/{key}", parameter.data)
    expose_text_model(encoder)
    pipe.text_encoder = encoder
    return recorded


def prompt_weighting_section(spec: dict, schedulers: dict) -> dict:
    pipe = lpw_pipeline(torch_pipeline("text", spec["torch_model"]))
    overrides = text_encoder_with_overrides(pipe, spec["text_encoder_overrides"]) if "text_encoder_overrides" in spec else {}
    def run(case: dict) -> dict:
        pipe.scheduler = make_scheduler(schedulers["by_key"][case["scheduler"]], schedulers["base_config"])
        seen: list = []
        out = pipe(prompt=case["prompt"], negative_prompt=case.get("negative_prompt"), height=case["height"], width=case["width"],
                   num_inference_steps=case["steps"], guidance_scale=case["guidance"], num_images_per_prompt=case["num_images_per_prompt"],
                   generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np",
                   max_embeddings_multiples=case["max_embeddings_multiples"], callback=lambda i, t, latents: seen.append(float(t)),
                   callback_steps=1)
        put(f"lpw/{case['name']}/torch_images", out.images)
        embeds = pipe._encode_prompt(case["prompt"], "cpu", case["num_images_per_prompt"], case["guidance"] > 1,
                                     case.get("negative_prompt"), case["max_embeddings_multiples"])
        embeds = embeds[0] if isinstance(embeds, tuple) else embeds
        put(f"lpw/{case['name']}/embeds", embeds)
        return {**case, "torch_nsfw": [bool(f) for f in out.nsfw_content_detected], "timesteps": [float(t) for t in pipe.scheduler.timesteps]}
    cases = run_cases("prompt_weighting", spec["cases"], run)
    return {"model": spec["model"], "torch_model": spec["torch_model"], "text_encoder_overrides": overrides,
            "note": "diffusers' community StableDiffusionLongPromptWeightingPipeline (examples/community/lpw_stable_diffusion.py) over "
                    "the same components: web-UI attention syntax ((word), (word:1.3), [word], escapes, BREAK is not parsed there), "
                    "prompts longer than 77 tokens in chunks of 75 with their own start and end tokens, up to max_embeddings_multiples "
                    "chunks, weights applied with the mean restored. embeds: what its _encode_prompt returns ([negative; prompt] rows "
                    "when guided, repeated per image). text_encoder_overrides: text-encoder tensors (diffusers/transformers names) replaced by "
                    "the arrays named, in every case of this section. Arrays under lpw/<name>/.",
            "cases": cases}


def clip_skip_embeddings(pipe, texts: list, clip_skip: int | None) -> torch.Tensor:
    """diffusers' encode_prompt embeddings with clip_skip, from the hidden states directly (transformers 5.6+ flattened
    text_model, which diffusers 0.40's clip_skip path reaches for): the hidden states clip_skip + 1 from the end, through the
    final layer norm; clip_skip None is the last hidden state."""
    ids = pipe.tokenizer(texts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    if clip_skip is None:
        return pipe.text_encoder(ids)[0]
    out = pipe.text_encoder(ids, output_hidden_states=True)
    norm = pipe.text_encoder.text_model.final_layer_norm if hasattr(pipe.text_encoder, "text_model") else pipe.text_encoder.final_layer_norm
    return norm(out.hidden_states[-(clip_skip + 1)])


def clip_skip_section(spec: dict, schedulers: dict) -> dict:
    pipe = torch_pipeline("text", spec["torch_model"])
    def run(case: dict) -> dict:
        prompts = case["prompt"] if isinstance(case["prompt"], list) else [case["prompt"]]
        negative = case.get("negative_prompt", "")
        negatives = negative if isinstance(negative, list) else [negative] * len(prompts)
        n = case["num_images_per_prompt"]
        # diffusers applies clip_skip to the prompt only: the negative prompt takes the last hidden state.
        positive = clip_skip_embeddings(pipe, prompts, case["clip_skip"]).repeat_interleave(n, dim=0)
        negative_embeds = clip_skip_embeddings(pipe, negatives, None).repeat_interleave(n, dim=0)
        pipe.scheduler = make_scheduler(schedulers["by_key"][case["scheduler"]], schedulers["base_config"])
        seen: list = []
        out = pipe(prompt_embeds=positive, negative_prompt_embeds=negative_embeds, height=case["height"], width=case["width"],
                   num_inference_steps=case["steps"], guidance_scale=case["guidance"], num_images_per_prompt=1,
                   generator=torch.Generator("cpu").manual_seed(case["seed"]), output_type="np", callback_on_step_end=recorder(seen))
        put(f"clip_skip/{case['name']}/torch_images", out.images)
        put(f"clip_skip/{case['name']}/prompt_embeds", positive)
        put(f"clip_skip/{case['name']}/negative_prompt_embeds", negative_embeds)
        return {**case, "torch_nsfw": [bool(f) for f in out.nsfw_content_detected], "timesteps": [float(t) for t in pipe.scheduler.timesteps]}
    cases = run_cases("clip_skip", spec["cases"], run)
    return {"model": spec["model"], "torch_model": spec["torch_model"],
            "note": "diffusers' clip_skip (its count: 1 skips one layer, a web UI's 'Clip skip: 2'), computed from the text encoder's "
                    "hidden states as diffusers' encode_prompt does (hidden_states[-(clip_skip + 1)] through final_layer_norm, for "
                    "the prompt only; the negative prompt takes the last hidden state), passed as prompt_embeds and "
                    "negative_prompt_embeds; otherwise as the pipeline section. Arrays under clip_skip/<name>/.",
            "cases": cases}


def torch_tables() -> None:
    """The float32 tables torch builds for the SD 1.5 schedule, for checking the SDK's emulation bit by bit."""
    from diffusers.schedulers import EulerDiscreteScheduler
    base = CASES["schedulers"]["base_config"]
    s = EulerDiscreteScheduler.from_config(base)
    sigmas = ((1 - s.alphas_cumprod) / s.alphas_cumprod) ** 0.5
    np.savez(OUT.parent / "tables.npz", betas=s.betas.numpy(), alphas_cumprod=s.alphas_cumprod.numpy(),
             sigmas=np.array(sigmas), log_sigmas=np.log(np.array(sigmas)),
             linspace=torch.linspace(base["beta_start"] ** 0.5, base["beta_end"] ** 0.5, 1000, dtype=torch.float32).numpy())


# ---------------------------------------------------------------------------------------------------------------------
started = time.time()
reference: dict = {"about": f"Reference outputs computed with Hugging Face diffusers by eng/reference/generate.py from {Path(args.cases).name}, "
                            "on the tiny models of the fixtures folder. Arrays live in reference.npz (a zip of .npy files, float32 unless "
                            "noted), keyed by the names given here.",
                   "versions": versions()}
if wanted("tokenizer"):
    reference["tokenizer"] = tokenizer_section(CASES["tokenizer"])
if wanted("rng"):
    reference["rng"] = rng_section(CASES["rng"])
if "schedulers" in CASES:
    # Pipeline and edit cases name their scheduler by key, so the section is always written when they are.
    reference["schedulers"] = schedulers_section(CASES["schedulers"]) if wanted("schedulers") else None
if wanted("pipeline"):
    reference["pipeline"] = pipeline_section(CASES["pipeline"], CASES["schedulers"])
if wanted("safety_preprocessing"):
    reference["safety_preprocessing"] = safety_preprocessing_section(CASES["safety_preprocessing"])
if wanted("edit"):
    reference["edit"] = edit_section(CASES["edit"], CASES["schedulers"])
if wanted("single_file"):
    reference["single_file"] = single_file_section(CASES["single_file"], CASES["schedulers"])
if wanted("textual_inversion"):
    reference["textual_inversion"] = textual_inversion_section(CASES["textual_inversion"], CASES["schedulers"])
if wanted("prompt_weighting"):
    reference["prompt_weighting"] = prompt_weighting_section(CASES["prompt_weighting"], CASES["schedulers"])
if wanted("clip_skip"):
    reference["clip_skip"] = clip_skip_section(CASES["clip_skip"], CASES["schedulers"])
if wanted("lora"):
    # Last: the LoRA layers PEFT wraps around the shared UNet and text encoder stay wrapped after the adapters are deleted.
    reference["lora"] = lora_section(CASES["lora"], CASES["schedulers"])
if args.tables:
    torch_tables()
if reference.get("schedulers") is None:
    reference["schedulers"] = {"base_config": CASES["schedulers"]["base_config"], "by_key": CASES["schedulers"]["by_key"], "cases": []}

if FAILED:
    raise SystemExit(f"diffusers could not run {len(FAILED)} case(s); fix the cases file (nothing was written):\n  " + "\n  ".join(FAILED))
if reference["schedulers"].get("errors"):
    print(f"schedulers: diffusers refuses {len(reference['schedulers']['errors'])} case(s), recorded in schedulers.errors: "
          f"{[e['name'] for e in reference['schedulers']['errors']]}")
OUT.mkdir(parents=True, exist_ok=True)
(OUT / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
np.savez_compressed(OUT / "reference.npz", **ARRAYS)
print(f"wrote {len(ARRAYS)} arrays, {(OUT / 'reference.npz').stat().st_size / 1e6:.2f} MB, in {time.time() - started:.1f} s to {OUT}")
