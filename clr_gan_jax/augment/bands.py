"""Image-space filtering: each sample's four frequency bands amplified by random gains at constant expected power."""

import jax
import jax.numpy as jnp

from clr_gan_jax.augment import wavelets
from clr_gan_jax.augment.draws import Draws
from clr_gan_jax.augment.spec import AugmentSpec

_HIGHEST = jax.lax.Precision.HIGHEST


def band_gains(draws: Draws, spec: AugmentSpec, p: jax.Array) -> jax.Array:
    """(N, 4) gains: band i is scaled by ``2 ** (randn * imgfilter_std)`` with probability ``imgfilter * p *
    imgfilter_bands[i]``, and after each band the gains are renormalised to keep the expected (1/f) power."""
    power = jnp.asarray(wavelets.BAND_EXPECTED_POWER)
    gains = jnp.ones((draws.batch, len(spec.imgfilter_bands)), jnp.float32)
    amplify = lambda z: jnp.exp2(z * spec.imgfilter_std)
    debug = lambda q: amplify(jax.scipy.special.erfinv(q * 2 - 1))
    for band, strength in enumerate(spec.imgfilter_bands):
        probability = spec.imgfilter * p * strength
        gain = draws(f"band{band}", probability, "normal", amplify, 1, debug if strength > 0 else jnp.ones_like)
        t = jnp.ones_like(gains).at[:, band].set(gain)
        gains = gains * t / jnp.sqrt((power * t**2).sum(axis=-1, keepdims=True))
    return gains


def filter_bands(images: jax.Array, gains: jax.Array) -> jax.Array:
    """NHWC images filtered separably (rows, then columns) by the per-sample filter ``sum_i gains[:, i] band_i``,
    over reflect-padded borders."""
    _, height, width, _ = images.shape
    rows = jnp.einsum("nb,bvw->nvw", gains, wavelets.band_matrices(width), precision=_HIGHEST)
    cols = jnp.einsum("nb,buh->nuh", gains, wavelets.band_matrices(height), precision=_HIGHEST)
    out = jnp.einsum("nvw,nhwc->nhvc", rows, images, precision=_HIGHEST)
    return jnp.einsum("nuh,nhvc->nuvc", cols, out, precision=_HIGHEST)
