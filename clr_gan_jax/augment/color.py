"""Colour transforms as one 4x4 affine map of RGB per sample: brightness, contrast, luma flip, hue, saturation."""

import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.augment.draws import Draws
from clr_gan_jax.augment.matrices import matmul, rotate3d, scale3d, translate3d
from clr_gan_jax.augment.spec import AugmentSpec

_LUMA = (np.array([1, 1, 1, 0]) / np.sqrt(3)).astype(np.float32)  # the grey axis of RGB, homogeneous


def color_transforms(draws: Draws, spec: AugmentSpec, p: jax.Array, channels: int) -> jax.Array:
    """(N, 4, 4) maps of homogeneous RGB, composed left to right in StyleGAN2-ADA's order. Hue and saturation
    are left out of grayscale images."""
    erfinv = jax.scipy.special.erfinv
    luma_outer = jnp.asarray(np.outer(_LUMA, _LUMA))
    eye = jnp.eye(4, dtype=jnp.float32)
    c = jnp.broadcast_to(eye, (draws.batch, 4, 4))
    if spec.brightness > 0:
        shift = lambda z: z * spec.brightness_std
        b = draws("brightness", spec.brightness * p, "normal", shift, 0, lambda q: shift(erfinv(q * 2 - 1)))
        c = matmul(translate3d(b, b, b), c)
    if spec.contrast > 0:
        scale = lambda z: jnp.exp2(z * spec.contrast_std)
        s = draws("contrast", spec.contrast * p, "normal", scale, 1, lambda q: scale(erfinv(q * 2 - 1)))
        c = matmul(scale3d(s, s, s), c)
    if spec.lumaflip > 0:
        i = draws("lumaflip", spec.lumaflip * p, "uniform", lambda u: jnp.floor(u * 2), 0, lambda q: jnp.floor(q * 2))
        c = matmul(eye - 2 * luma_outer * i[:, None, None], c)  # Householder reflection through the grey plane
    if spec.hue > 0 and channels > 1:
        angle = lambda u: (u * 2 - 1) * np.pi * spec.hue_max
        c = matmul(rotate3d(_LUMA[:3], draws("hue", spec.hue * p, "uniform", angle, 0, angle)), c)
    if spec.saturation > 0 and channels > 1:
        scale = lambda z: jnp.exp2(z * spec.saturation_std)
        s = draws("saturation", spec.saturation * p, "normal", scale, 1, lambda q: scale(erfinv(q * 2 - 1)))
        c = matmul(luma_outer + (eye - luma_outer) * s[:, None, None], c)
    return c


def apply_color(images: jax.Array, transforms: jax.Array) -> jax.Array:
    """NHWC RGB images mapped by (N, 4, 4) colour transforms; a grayscale image by the mean of the RGB rows."""
    if images.shape[-1] == 3:
        linear = jnp.einsum("nij,nhwj->nhwi", transforms[:, :3, :3], images, precision=jax.lax.Precision.HIGHEST)
        return linear + transforms[:, None, None, :3, 3]
    rows = transforms[:, :3].mean(axis=1)  # (N, 4)
    return images * rows[:, None, None, :3].sum(axis=-1, keepdims=True) + rows[:, None, None, 3:]
