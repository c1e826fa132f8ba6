"""``--mode=generate``: one PNG per seed from a run's EMA generator, drawn as StyleGAN2-ADA's generate.py draws them.

For seed s, z = ``np.random.RandomState(s).randn(1, z_dim)`` and the image is written as
``(x * 127.5 + 128)`` clipped to [0, 255] and truncated to uint8, so the same weights (imported with
``--mode=import``) and seeds give the official images: with ``--noise_mode=const`` at most one uint8
level apart at every pixel. ``--noise_mode=random`` draws the noise from ``jax.random.key(seed)``
(the official code draws it from torch's generator, which cannot be matched).
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from clr_gan_jax import build, export
from clr_gan_jax.errors import UserError, require

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


def official_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] images -> uint8 as the official generate.py: x * 127.5 + 128, clipped, truncated."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)


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
    experiment = build.build(config)
    method = experiment.method
    require(noise_mode in NOISE_MODES, f"--noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    options = {}
    if trunc != 1.0 or noise_mode != "const":
        require(
            "truncation_psi" in method.generate_options,
            f"--trunc and --noise_mode need a style-based generator (model.arch=stylegan2), not {config.model.arch!r}",
        )
        options = {"truncation_psi": trunc, "noise_mode": noise_mode}
    variables, step = export.restore_ema(experiment, workdir, step)
    conditional = "labels" in method.sample_latents(jax.random.key(0), 1)
    if class_idx is not None:
        require(conditional, "--class_idx needs a conditional model (model.num_classes > 0)")
        require(0 <= class_idx < config.model.num_classes, f"--class_idx must be in [0, {config.model.num_classes})")
    else:
        require(not conditional, "this model is conditional: choose the class with --class_idx=N")
    generate = jax.jit(lambda variables, latents, rng: method.generate(variables, latents, rng, **options))
    os.makedirs(outdir, exist_ok=True)
    paths = []
    batch = 1 if noise_mode == "random" else BATCH  # random noise comes from each seed's own key
    for start in range(0, len(seeds), batch):
        chunk = seeds[start : start + batch]
        z = np.concatenate([np.random.RandomState(seed).randn(1, config.model.z_dim) for seed in chunk])
        latents = {"z": jnp.asarray(z, jnp.float32)}
        if class_idx is not None:
            latents["labels"] = jnp.full((len(chunk),), class_idx, jnp.int32)
        rng = jax.random.key(chunk[0]) if noise_mode == "random" else None
        for seed, image in zip(chunk, official_uint8(generate(variables, latents, rng))):
            path = os.path.join(outdir, f"seed{seed:04d}.png")
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
            paths.append(path)
    return paths
