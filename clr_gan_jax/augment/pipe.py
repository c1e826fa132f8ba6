"""The ADA augmentation: ``augment(images, p, key, pipe)``, pure and jitted, differentiable in the images."""

import functools

import jax
import jax.numpy as jnp

from clr_gan_jax.augment.bands import band_gains, filter_bands
from clr_gan_jax.augment.color import apply_color, color_transforms
from clr_gan_jax.augment.corruptions import add_noise, cutout
from clr_gan_jax.augment.draws import Draws
from clr_gan_jax.augment.geometry import inverse_transforms, resample
from clr_gan_jax.augment.spec import AugmentSpec, resolve
from clr_gan_jax.errors import UserError


def augment(
    images: jax.Array, p, key: jax.Array, pipe: str | AugmentSpec = "bgc", *, debug_percentile: float | None = None
) -> jax.Array:
    """StyleGAN2-ADA's AugmentPipe on NHWC float images in [-1, 1] (any size; RGB or grayscale for colour).

    Args:
      images: (N, H, W, C) floats; gradients flow back to them (to any order).
      p: augmentation probability, a traced scalar (changing it does not recompile). Each transform of the pipe
        runs on each sample independently with probability ``multiplier * p``; ``p = 0`` returns ``images``.
      key: a ``jax.random`` key; the parameters of every sample come from it.
      pipe: a registered name (blit, geom, color, filter, noise, cutout, bg, bgc, bgcf, bgcfn, bgcfnc) or a spec.
      debug_percentile: in (0, 1): every transform of the pipe runs with the deterministic parameters StyleGAN2's
        ``AugmentPipe(images, debug_percentile=q)`` uses (p and the gates ignored; the noise pixels stay random).

    Order: geometry (blit then general, one resampling), colour, image-space filter, noise, cutout. Samples whose
    gates all stay shut in a group are passed through that group unchanged (bit for bit); StyleGAN2 resamples them,
    which changes them only by float rounding. The geometry's reflect margin is shared by the batch, as in
    StyleGAN2, where the batch is one GPU's; here it is the whole (global) batch given.
    """
    spec = resolve(pipe)
    _check(images, spec, debug_percentile)
    percentile = None if debug_percentile is None else jnp.float32(debug_percentile)
    return _augment(images, jnp.asarray(p, jnp.float32), key, percentile, spec=spec)


@functools.partial(jax.jit, static_argnames="spec")
def _augment(images: jax.Array, p: jax.Array, key: jax.Array, debug_percentile: jax.Array | None, *, spec: AugmentSpec):
    """`augment` with the percentile traced (one compilation serves every q) and the pipe static."""
    x = images.astype(jnp.float32)
    batch, height, width, channels = x.shape
    draws = Draws(key, batch, debug_percentile, pixel_shape=x.shape if spec.noise > 0 else ())
    if spec.has_geometry:
        g_inv = inverse_transforms(draws, spec, p, height, width)
        x = _where(draws.take_opened(), resample(x, g_inv), x)
    if spec.has_color:
        transforms = color_transforms(draws, spec, p, channels)
        x = _where(draws.take_opened(), apply_color(x, transforms), x)
    if spec.imgfilter > 0:
        gains = band_gains(draws, spec, p)
        x = _where(draws.take_opened(), filter_bands(x, gains), x)
    if spec.noise > 0:
        x = add_noise(draws, spec, p, x)
    if spec.cutout > 0:
        x = cutout(draws, spec, p, x)
    return x.astype(images.dtype)


def _where(opened: jax.Array, transformed: jax.Array, images: jax.Array) -> jax.Array:
    return jnp.where(opened[:, None, None, None], transformed, images)


def _check(images, spec: AugmentSpec, debug_percentile: float | None) -> None:
    if images.ndim != 4:
        raise UserError(f"augment takes NHWC images (4 dimensions), got shape {tuple(images.shape)}.")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise UserError(f"augment takes float images in [-1, 1], got {images.dtype}; convert with x / 127.5 - 1.")
    if spec.has_color and images.shape[-1] not in (1, 3):
        raise UserError(
            f"Colour augmentation needs RGB or grayscale images, got {images.shape[-1]} channels; "
            "use a pipe without colour (blit, geom, bg, filter, noise, cutout)."
        )
    if debug_percentile is not None and not 0 < debug_percentile < 1:
        raise UserError(f"debug_percentile={debug_percentile} must lie strictly between 0 and 1.")
