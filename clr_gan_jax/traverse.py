"""``--mode=traverse``: one PNG whose rows vary one latent code or coordinate of a run's EMA generator.

InfoGAN (``infogan.enabled``): one row per value of the categorical code, then, for each continuous
code, one row per value of the sweep -span..span (``--columns`` values); the columns are ``--columns``
base latents (z and the other codes), the same in every row. EigenGAN (``model.arch='eigengan'``): one
row per (layer, dimension), top layer first, that coordinate swept over -span..span along the row on one
base latent. The base latents are drawn from ``--sample_seed``; rows built on the same base differ only in
the varied code (`latents.Row`).
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from clr_gan_jax import build, export, images
from clr_gan_jax.errors import require
from clr_gan_jax.latents import rows_latents


def traversal_rows(experiment: build.Experiment, columns: int, span: float) -> list:
    """The method's rows (`latents.Row`) for ``columns`` columns and a sweep over -span..span; UserError if none."""
    rows = experiment.method.traversal(columns, jnp.linspace(-span, span, columns))
    require(
        bool(rows), "--mode=traverse needs latent codes (infogan.enabled) or layer coordinates (model.arch='eigengan')"
    )
    return rows


def traverse_samples(experiment: build.Experiment, variables: dict, columns: int, span: float, seed: int) -> np.ndarray:
    """(rows * columns, H, W, C) samples of the traversal, row after row."""
    method = experiment.method
    rows = traversal_rows(experiment, columns, span)
    latents = rows_latents(method.sample_latents(jax.random.key(seed), columns), rows)
    return np.asarray(build.generate_fn(experiment)(variables, latents))


def write_traverse_grid(
    config: ml_collections.ConfigDict,
    workdir: str,
    columns: int,
    span: float,
    seed: int,
    output: str | None = None,
    step: int | None = None,
) -> str:
    """Writes the traversal of checkpoint ``step`` (default: the latest), by default to
    ``<workdir>/samples/traverse_<step>_seed<seed>.png``."""
    require(columns >= 2 and span > 0, f"--columns must be >= 2 and --span > 0, got {columns} and {span}")
    experiment = build.build(config)
    traversal_rows(experiment, columns, span)  # a model without codes fails before any checkpoint is read
    variables, step = export.restore_ema(experiment, workdir, step)
    samples = traverse_samples(experiment, variables, columns, span, seed)
    path = output or os.path.join(workdir, "samples", f"traverse_{step:07d}_seed{seed}.png")
    grid = images.image_grid(images.to_uint8(samples), columns=columns)
    scale = -(-64 // samples.shape[1])  # each image at least 64 px wide: the grid is long
    images.save_png(path, grid, min_side=scale * max(grid.shape[:2]))
    return path
