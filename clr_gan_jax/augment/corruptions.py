"""Image-space corruptions: additive Gaussian noise with a per-sample sigma, and cutout of a square."""

import jax
import jax.numpy as jnp

from clr_gan_jax.augment.draws import Draws
from clr_gan_jax.augment.spec import AugmentSpec


def add_noise(draws: Draws, spec: AugmentSpec, p: jax.Array, images: jax.Array) -> jax.Array:
    """Adds ``randn * sigma`` per pixel, ``sigma = |randn| * noise_std`` per sample (0 where the gate stays shut)."""
    sigma = draws(
        "noise",
        spec.noise * p,
        "normal",
        lambda z: jnp.abs(z) * spec.noise_std,
        0,
        lambda q: jax.scipy.special.erfinv(q) * spec.noise_std,
    )
    return images + draws.pixels * sigma[:, None, None, None]


def cutout(draws: Draws, spec: AugmentSpec, p: jax.Array, images: jax.Array) -> jax.Array:
    """Zeroes an axis-aligned square of side ``cutout_size`` (relative to each image side) at a uniform centre."""
    _, height, width, _ = images.shape
    full_size = lambda x: jnp.full_like(x, spec.cutout_size)
    size = draws("cutout", spec.cutout * p, "uniform", full_size, 0, full_size)
    center = draws("cutout_center", None, "uniform", lambda u: u, 0, lambda q: q, size=2)
    x = (jnp.arange(width, dtype=jnp.float32) + 0.5) / width
    y = (jnp.arange(height, dtype=jnp.float32) + 0.5) / height
    outside_x = jnp.abs(x[None, :] - center[:, :1]) >= size[:, None] / 2  # (N, W)
    outside_y = jnp.abs(y[None, :] - center[:, 1:]) >= size[:, None] / 2  # (N, H)
    keep = outside_x[:, None, :] | outside_y[:, :, None]
    return images * keep[..., None].astype(images.dtype)
