"""``--mode=generate``: one PNG per seed from a run's EMA generator, drawn as StyleGAN2-ADA's generate.py draws them.

For seed s, z = ``np.random.RandomState(s).randn(1, z_dim)`` and the image is written as
``(x * 127.5 + 128)`` clipped to [0, 255] and truncated to uint8, so the same weights (imported with
``--mode=import``) and seeds give the official images: with ``--noise_mode=const`` at most one uint8
level apart at every pixel. ``--noise_mode=random`` draws the noise from ``jax.random.key(seed)``
(the official code draws it from torch's generator, which cannot be matched).

``--interpolate=A,B,N`` writes one strip of N images from seed A's latent to seed B's, each drawn as
above: for a generator with a mapping network (stylegan2) linearly between the two w (both z mapped
first, truncation applied), otherwise linearly between the two z. Its first and last images are
seed A's and seed B's.
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from clr_gan_jax import build, export
from clr_gan_jax.errors import UserError, require
from clr_gan_jax.images import to_uint8

NOISE_MODES = ("const", "random", "none")
BATCH = 16


def parse_seeds(text: str) -> list[int]:
    """'0-7,12' -> [0, 1, ..., 7, 12]; UserError for anything else."""
    seeds = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, sep, last = part.partition("-")
        try:
            seeds += list(range(int(first), int(last) + 1)) if sep else [int(first)]
        except ValueError:
            raise UserError(f"--seeds={text!r}: use numbers and ranges like 0-7,12") from None
    require(bool(seeds) and min(seeds) >= 0, f"--seeds={text!r}: give at least one seed >= 0, like 0-7,12")
    return seeds


def parse_interpolation(text: str) -> tuple[int, int, int]:
    """'3,7,9' -> (3, 7, 9): seed A, seed B, images in the strip; UserError for anything else."""
    try:
        seed_a, seed_b, steps = (int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--interpolate={text!r}: give seedA,seedB,steps, like 3,7,9") from None
    require(min(seed_a, seed_b) >= 0 and steps >= 2, f"--interpolate={text!r}: seeds must be >= 0 and steps >= 2")
    return seed_a, seed_b, steps


def seed_latents(seeds: list[int], z_dim: int) -> np.ndarray:
    """(len(seeds), z_dim) float32: seed s's z as the official generate.py draws it."""
    return np.concatenate([np.random.RandomState(seed).randn(1, z_dim) for seed in seeds]).astype(np.float32)


def _restore_generator(config, workdir, trunc, noise_mode, class_idx, step):
    """(experiment, EMA variables of checkpoint ``step``, generate options), the options checked against the model."""
    experiment = build.build(config)
    method = experiment.method
    latents = method.sample_latents(jax.random.key(0), 1)
    require("codes" not in latents, "this G also reads latent codes (infogan): use --mode=sample or --mode=traverse")
    require(noise_mode in NOISE_MODES, f"--noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    options = {}
    if trunc != 1.0 or noise_mode != "const":
        require(
            "truncation_psi" in method.generate_options,
            f"--trunc and --noise_mode need a style-based generator (model.arch=stylegan2), not {config.model.arch!r}",
        )
        options = {"truncation_psi": trunc, "noise_mode": noise_mode}
    variables, _ = export.restore_ema(experiment, workdir, step)
    conditional = "labels" in latents
    if class_idx is not None:
        require(conditional, "--class_idx needs a conditional model (model.num_classes > 0)")
        require(0 <= class_idx < config.model.num_classes, f"--class_idx must be in [0, {config.model.num_classes})")
    else:
        require(not conditional, "this model is conditional: choose the class with --class_idx=N")
    return experiment, variables, options


def _latents(z: np.ndarray, class_idx: int | None) -> dict:
    latents = {"z": jnp.asarray(z, jnp.float32)}
    if class_idx is not None:
        latents["labels"] = jnp.full((len(z),), class_idx, jnp.int32)
    return latents


def _save(path: str, image: np.ndarray) -> str:
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
    return path


def generate_images(
    config: ml_collections.ConfigDict,
    workdir: str,
    seeds: list[int],
    outdir: str,
    *,
    trunc: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    step: int | None = None,
) -> list[str]:
    """Writes ``outdir/seed%04d.png`` for every seed from the EMA generator of checkpoint ``step`` (default: latest)."""
    experiment, variables, options = _restore_generator(config, workdir, trunc, noise_mode, class_idx, step)
    method = experiment.method
    generate = jax.jit(lambda variables, latents, rng: method.generate(variables, latents, rng, **options))
    os.makedirs(outdir, exist_ok=True)
    paths = []
    batch = 1 if noise_mode == "random" else BATCH  # random noise comes from each seed's own key
    for start in range(0, len(seeds), batch):
        chunk = seeds[start : start + batch]
        latents = _latents(seed_latents(chunk, config.model.z_dim), class_idx)
        rng = jax.random.key(chunk[0]) if noise_mode == "random" else None
        for seed, image in zip(chunk, to_uint8(generate(variables, latents, rng))):
            paths.append(_save(os.path.join(outdir, f"seed{seed:04d}.png"), image))
    return paths


def interpolation_strip(
    config: ml_collections.ConfigDict,
    workdir: str,
    seed_a: int,
    seed_b: int,
    steps: int,
    outdir: str,
    *,
    trunc: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    step: int | None = None,
) -> str:
    """Writes ``outdir/interp_seed%04d-seed%04d.png``, ``steps`` images side by side (H, steps * W), from seed A to B.

    Linear in the method's interpolation space (`Method.interpolation_latents`): w for StyleGAN2, z for the others.
    """
    require(noise_mode != "random", "--interpolate needs --noise_mode=const or none: random noise changes every image")
    experiment, variables, options = _restore_generator(config, workdir, trunc, noise_mode, class_idx, step)
    require(len(experiment.example_shape) == 3, "--interpolate needs an image model, not 2-D points")
    method = experiment.method
    ends = _latents(seed_latents([seed_a, seed_b], config.model.z_dim), class_idx)
    t = jnp.linspace(0.0, 1.0, steps)

    def lerp(pair: jax.Array) -> jax.Array:
        """(2, ...) -> (steps, ...) as (1 - t) a + t b: exactly a at t=0 and exactly b at t=1."""
        t_ = t.reshape(-1, *([1] * (pair.ndim - 1)))
        return (1 - t_) * pair[0] + t_ * pair[1]

    @jax.jit
    def strip(variables, ends):
        codes = method.interpolation_latents(variables, ends, **options)
        line = {name: lerp(code) for name, code in codes.items() if name != "labels"}
        if "labels" in codes:
            line["labels"] = jnp.full((steps,), class_idx, jnp.int32)
        return method.generate(variables, line, **options)

    images = to_uint8(strip(variables, ends))  # (steps, H, W, C)
    os.makedirs(outdir, exist_ok=True)
    picture = np.concatenate(list(images), axis=1)
    return _save(os.path.join(outdir, f"interp_seed{seed_a:04d}-seed{seed_b:04d}.png"), picture)
