"""Pixel blitting and general geometric transforms: one inverse affine map per sample, one alias-free resampling.

The resampling follows StyleGAN2-ADA: reflect-pad by a margin shared by the batch, upsample 2x with sym6, sample
bilinearly (zeros outside, align_corners=False), downsample 2x with sym6. The margin depends on the sampled
transforms, which jit cannot turn into a shape; here the image is reflect-padded by the largest margin StyleGAN2
allows (size - 1 per side) and everything beyond the batch's actual margin is zeroed, before and after the
upsampling. Zero-padded filtering and zero-padded sampling of the small image equal those of the large one embedded
in zeros, so the result is StyleGAN2's for every margin, at the cost of a larger upsampled image.
"""

import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.augment import wavelets
from clr_gan_jax.augment.draws import Draws
from clr_gan_jax.augment.matrices import matmul, rotate2d, scale2d, translate2d
from clr_gan_jax.augment.spec import AugmentSpec

_HIGHEST = jax.lax.Precision.HIGHEST


def inverse_transforms(draws: Draws, spec: AugmentSpec, p: jax.Array, height: int, width: int) -> jax.Array:
    """(N, 3, 3) maps from output to input pixel coordinates (origin at the image centre), composed in
    StyleGAN2-ADA's order: x-flip, 90-degree rotation, integer translation, scale, pre-rotation, anisotropic scale,
    post-rotation, fractional translation."""
    erfinv = jax.scipy.special.erfinv
    g = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (draws.batch, 3, 3))
    if spec.xflip > 0:
        i = draws("xflip", spec.xflip * p, "uniform", lambda u: jnp.floor(u * 2), 0, lambda q: jnp.floor(q * 2))
        g = matmul(g, scale2d(1 / (1 - 2 * i), 1))
    if spec.rotate90 > 0:
        i = draws("rotate90", spec.rotate90 * p, "uniform", lambda u: jnp.floor(u * 4), 0, lambda q: jnp.floor(q * 4))
        g = matmul(g, rotate2d(np.pi / 2 * i))
    if spec.xint > 0:
        shift = lambda u: (u * 2 - 1) * spec.xint_max
        t = draws("xint", spec.xint * p, "uniform", shift, 0, shift, size=2)
        g = matmul(g, translate2d(-jnp.round(t[:, 0] * width), -jnp.round(t[:, 1] * height)))
    if spec.scale > 0:
        scale = lambda z: jnp.exp2(z * spec.scale_std)
        s = draws("scale", spec.scale * p, "normal", scale, 1, lambda q: scale(erfinv(q * 2 - 1)))
        g = matmul(g, scale2d(1 / s, 1 / s))
    # Two independent rotations, each with probability p_rot, so that P(pre or post) = rotate * p.
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - spec.rotate * p, 0, 1))
    angle = lambda u: (u * 2 - 1) * np.pi * spec.rotate_max
    if spec.rotate > 0:
        g = matmul(g, rotate2d(draws("pre_rotate", p_rot, "uniform", angle, 0, angle)))
    if spec.aniso > 0:
        scale = lambda z: jnp.exp2(z * spec.aniso_std)
        s = draws("aniso", spec.aniso * p, "normal", scale, 1, lambda q: scale(erfinv(q * 2 - 1)))
        g = matmul(g, scale2d(1 / s, s))
    if spec.rotate > 0:
        g = matmul(g, rotate2d(draws("post_rotate", p_rot, "uniform", angle, 0, jnp.zeros_like)))
    if spec.xfrac > 0:
        shift = lambda z: z * spec.xfrac_std
        t = draws("xfrac", spec.xfrac * p, "normal", shift, 0, lambda q: shift(erfinv(q * 2 - 1)), size=2)
        g = matmul(g, translate2d(-t[:, 0] * width, -t[:, 1] * height))
    return g


def resample(images: jax.Array, g_inv: jax.Array) -> jax.Array:
    """NHWC images warped by per-sample inverse maps (N, 3, 3) with StyleGAN2-ADA's alias-free resampling."""
    _, height, width, _ = images.shape
    margin = _margin(g_inv, height, width)
    expand_x = _expand_operator(width, margin[0], margin[2])
    expand_y = _expand_operator(height, margin[1], margin[3])
    upsampled = jnp.einsum("vw,nhwc->nhvc", expand_x, images, precision=_HIGHEST)
    upsampled = jnp.einsum("uh,nhvc->nuvc", expand_y, upsampled, precision=_HIGHEST)
    rows, cols = _sample_positions(g_inv, height, width, upsampled.shape[1:3])
    sampled = _bilinear_zeros(upsampled, rows, cols)
    out = jnp.einsum("jw,nhwc->nhjc", wavelets.downsample_matrix(width), sampled, precision=_HIGHEST)
    return jnp.einsum("ih,nhjc->nijc", wavelets.downsample_matrix(height), out, precision=_HIGHEST)


def _margin(g_inv: jax.Array, height: int, width: int) -> jax.Array:
    """int32 [x0, y0, x1, y1]: reflect padding per side that covers every sample's output corners, plus the
    filters' border, clamped to [0, size - 1]; the largest over the batch."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = jnp.array([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], jnp.float32)
    xy = jnp.einsum("nij,kj->nik", g_inv, corners, precision=_HIGHEST)[:, :2]  # (N, xy, corner)
    reach = jnp.concatenate([-xy, xy], axis=1).max(axis=(0, 2))
    border = 2 * wavelets.GEOM_PAD
    reach = reach + jnp.array([border - cx, border - cy] * 2, jnp.float32)
    reach = jnp.minimum(jnp.maximum(reach, 0), jnp.array([width - 1, height - 1] * 2, jnp.float32))
    return jnp.ceil(reach).astype(jnp.int32)


def _expand_operator(size: int, before: jax.Array, after: jax.Array) -> jax.Array:
    """(2 (3 size - 2), size): reflect padding by size - 1 with pixels beyond the margin (``before``, ``after``)
    zeroed, then the 2x sym6 upsampling, its output zeroed beyond twice the margin."""
    most = size - 1
    padded = np.arange(size + 2 * most)
    keep = (padded >= most - before) & (padded < most + size + after)
    upsample = wavelets.upsample_matrix(size + 2 * most)
    operator = matmul(upsample * keep.astype(jnp.float32), wavelets.reflect_pad_matrix(size, most))
    up = np.arange(2 * padded.size)
    keep_up = (up >= 2 * (most - before)) & (up < 2 * (most + size + after))
    return operator * keep_up[:, None].astype(jnp.float32)


def _sample_positions(g_inv: jax.Array, height: int, width: int, source_shape) -> tuple[jax.Array, jax.Array]:
    """(N, 2 (H + 6), 2 (W + 6)) row and column positions in the upsampled padded image of every output sample.

    Works in pixel units with the origin at each image's centre, where StyleGAN2 normalises to [-1, 1] for
    affine_grid and grid_sample with align_corners=False: the same map.
    """
    out_h, out_w = 2 * (height + 2 * wavelets.GEOM_PAD), 2 * (width + 2 * wavelets.GEOM_PAD)
    # Low-res map -> upsampled map: sample centres of the 2x image sit at half-pixel offsets.
    g_up = matmul(translate2d(-0.5, -0.5), matmul(scale2d(2, 2), matmul(g_inv, scale2d(0.5, 0.5))))
    g_up = matmul(g_up, translate2d(0.5, 0.5))
    u = jnp.arange(out_w, dtype=jnp.float32) - (out_w - 1) / 2
    v = jnp.arange(out_h, dtype=jnp.float32) - (out_h - 1) / 2
    coefficient = lambda row, col: g_up[:, row, col, None, None]
    cols = coefficient(0, 0) * u + coefficient(0, 1) * v[:, None] + coefficient(0, 2) + (source_shape[1] - 1) / 2
    rows = coefficient(1, 0) * u + coefficient(1, 1) * v[:, None] + coefficient(1, 2) + (source_shape[0] - 1) / 2
    return rows, cols


def _bilinear_zeros(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """images (N, H, W, C) sampled at (N, h, w) fractional pixel positions; neighbours outside count as zero.

    One gather of 2x2 windows from the image padded by a zero pixel: its gradient is a single scatter-add, which
    XLA:CPU runs about twice as fast as four single-pixel ones.
    """
    _, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    row0, col0 = jnp.floor(rows), jnp.floor(cols)
    # Windows that start outside are moved inside; all their neighbours are outside and get weight 0.
    starts = jnp.stack(
        [jnp.clip(row0 + 1, 0, height).astype(jnp.int32), jnp.clip(col0 + 1, 0, width).astype(jnp.int32)], axis=-1
    )
    dimensions = jax.lax.GatherDimensionNumbers(
        offset_dims=(3, 4, 5),
        collapsed_slice_dims=(),
        start_index_map=(1, 2),
        operand_batching_dims=(0,),
        start_indices_batching_dims=(0,),
    )
    windows = jax.lax.gather(padded, starts, dimensions, slice_sizes=(1, 2, 2, channels), mode="clip")

    def weights(position, first, size):  # (..., 2): bilinear weights of the two neighbours, 0 outside the image
        fraction = position - first
        inside = jnp.stack([(first >= 0) & (first < size), (first >= -1) & (first < size - 1)], axis=-1)
        return jnp.where(inside, jnp.stack([1 - fraction, fraction], axis=-1), 0)

    w = weights(rows, row0, height)[..., :, None] * weights(cols, col0, width)[..., None, :]
    return jnp.einsum("nhwij,nhwijc->nhwc", w, windows, precision=jax.lax.Precision.HIGHEST)
