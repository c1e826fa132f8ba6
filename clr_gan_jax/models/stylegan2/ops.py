"""StyleGAN2's low-level ops in NHWC with HWIO kernels, numerically those of the official reference paths.

Each op has the semantics of the function of the same name in StyleGAN2-ADA's ``torch_utils/ops`` (the ``ref``
paths), with activations in NHWC instead of NCHW and convolution kernels in HWIO (kh, kw, in / groups, out)
instead of OIHW. Everything here is a pure function of arrays; resampling filters are NumPy constants
(`setup_filter`), so the filter taps, paddings and factors are static and jit builds one program per layer.

Conventions kept from the official code:
- paddings are given as an int, (px, py) or (px0, px1, py0, py1) -- x (width) first -- in the coordinates of the
  upsampled image; negative padding crops;
- ``flip_filter=False`` / ``flip_weight=False`` mean true convolution, ``True`` means correlation (what
  `lax.conv_general_dilated` computes). StyleGAN2's layers use ``flip_weight = (up == 1)``, so every up=2
  convolution correlates with the spatially flipped kernel.

Two implementations of the FIR filter and of the transposed (upsampling) convolution compute the same values
(`implementation`): ``"conv"`` uses XLA's convolutions, as on GPU and TPU; ``"matmul"`` writes the convolutions
as matrix products (im2col; the transposed convolution as one product followed by an overlap-add of the kernel
taps) and the FIR filters as sums of shifted slices, because XLA:CPU runs convolutions, and above all their
gradients, on slow kernels (about 3x slower fwd+bwd for a 3x3 512->512 convolution, 30x for the depthwise FIR).
The default follows `jax.default_backend()`.
"""

import contextlib
import contextvars
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from clr_gan_jax.errors import UserError

Padding = int | Sequence[int]
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")
IMPLEMENTATIONS = ("conv", "matmul")
_implementation = contextvars.ContextVar("stylegan2_ops_implementation", default=None)


@contextlib.contextmanager
def implementation(name: str):
    """Force the ``"conv"`` or ``"matmul"`` implementation while tracing (tests; jit caches are not invalidated)."""
    if name not in IMPLEMENTATIONS:
        raise UserError(f"implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
    token = _implementation.set(name)
    try:
        yield
    finally:
        _implementation.reset(token)


def current_implementation() -> str:
    """The implementation in force: the forced one, else "matmul" on CPU and "conv" elsewhere."""
    return _implementation.get() or ("matmul" if jax.default_backend() == "cpu" else "conv")


# ----------------------------------------------------------------------------------------------------------------
# FIR filters and upfirdn2d


def setup_filter(f=None, *, normalize: bool = True, flip_filter: bool = False, gain: float = 1.0, separable=None):
    """A float32 NumPy FIR filter for `upfirdn2d`: 2-D (fh, fw), or 1-D (taps,) when applied separably.

    ``None`` is the identity. A 1-D filter is used separably when ``separable`` says so, or (if None) when it has
    at least 8 taps; otherwise it becomes its outer product. Then, in order: divide by its sum (``normalize``),
    flip, and multiply by ``gain ** (ndim / 2)``. ``[1, 3, 3, 1]`` becomes the 4x4 filter outer(f, f) / 64.
    """
    f = np.asarray(1.0 if f is None else f, dtype=np.float32)
    if f.ndim > 2 or f.size == 0:
        raise UserError(f"resample filter must be a non-empty scalar, 1-D or 2-D array, got shape {f.shape}")
    f = f.reshape(-1) if f.ndim == 0 else f
    if separable is None:
        separable = f.ndim == 1 and f.size >= 8
    if f.ndim == 1 and not separable:
        f = np.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise UserError(f"a {f.ndim}-D resample filter cannot be {'' if separable else 'non-'}separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = np.flip(f)
    return np.ascontiguousarray(f * gain ** (f.ndim / 2), dtype=np.float32)


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """int, (px, py) or (px0, px1, py0, py1) -> (px0, px1, py0, py1)."""
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) != 4:
        raise UserError(f"padding must be an int, (px, py) or (px0, px1, py0, py1), got {padding}")
    return padding


def filter_size(f) -> tuple[int, int]:
    """(width, height) of a filter from `setup_filter`; (1, 1) for None."""
    if f is None:
        return 1, 1
    return f.shape[-1], f.shape[0]


def _depthwise(x, kernel_hw: np.ndarray, strides: tuple[int, int]):
    """Correlation of every channel of x with the same 2-D kernel, VALID, with the given strides."""
    channels = x.shape[-1]
    kernel = jnp.broadcast_to(jnp.asarray(kernel_hw, x.dtype)[:, :, None, None], (*kernel_hw.shape, 1, channels))
    return lax.conv_general_dilated(
        x, kernel, strides, "VALID", dimension_numbers=_DIMENSIONS, feature_group_count=channels
    )


def _shift_add(x, kernel_hw: np.ndarray, strides: tuple[int, int]):
    """`_depthwise` as a weighted sum of strided slices of x, one per non-zero tap."""
    (kh, kw), (sy, sx) = kernel_hw.shape, strides
    h, w = (x.shape[1] - kh) // sy + 1, (x.shape[2] - kw) // sx + 1
    terms = [
        float(kernel_hw[i, j])
        * lax.slice(
            x, (0, i, j, 0), (x.shape[0], i + (h - 1) * sy + 1, j + (w - 1) * sx + 1, x.shape[3]), (1, sy, sx, 1)
        )
        for i in range(kh)
        for j in range(kw)
        if kernel_hw[i, j] != 0
    ]
    return sum(terms[1:], terms[0])


def _rank_one_factors(f: np.ndarray):
    """(column, row) with outer(column, row) == f when the 2-D filter has rank one (e.g. [1,3,3,1]), else None."""
    i, j = np.unravel_index(np.argmax(np.abs(f)), f.shape)
    column, row = f[:, j], f[i, :] / f[i, j]
    return (column, row) if np.allclose(np.outer(column, row), f, rtol=1e-6, atol=0) else None


def _fir(x, f: np.ndarray, down: int):
    """VALID correlation of every channel with f at stride ``down``; a 1-D f runs along W, then along H.

    The "matmul" implementation also splits a rank-one 2-D filter (such as [1,3,3,1]) into two 1-D passes.
    """
    if current_implementation() == "conv":
        correlate, separable = _depthwise, None if f.ndim == 2 else (f, f)
    else:
        correlate, separable = _shift_add, (f, f) if f.ndim == 1 else _rank_one_factors(f)
    if separable is None:
        return correlate(x, f, (down, down))
    column, row = separable
    return correlate(correlate(x, row[None, :], (1, down)), column[:, None], (down, 1))


def upfirdn2d(x, f, *, up: int = 1, down: int = 1, padding: Padding = 0, flip_filter: bool = False, gain=1.0):
    """Upsample (insert up-1 zeros after every pixel), pad or crop, FIR-filter, downsample (keep every down-th pixel).

    x: (N, H, W, C). f: from `setup_filter` (2-D, or 1-D applied along W then H) or None for the identity.
    The filter is scaled by ``gain ** (f.ndim / 2)``, so ``gain`` is the gain of the whole 2-D operation.
    """
    f = np.ones((1, 1), np.float32) if f is None else np.asarray(f, np.float32)
    px0, px1, py0, py1 = parse_padding(padding)
    zero = jnp.zeros((), x.dtype)
    # Zero insertion and padding (negative = cropping) in one lax.pad: interior padding comes first.
    x = lax.pad(x, zero, [(0, 0, 0), (py0, py1 + up - 1, up - 1), (px0, px1 + up - 1, up - 1), (0, 0, 0)])
    f = f * gain ** (f.ndim / 2)
    if not flip_filter:
        f = np.flip(f)
    return _fir(x, f, down)


def filter2d(x, f, *, padding: Padding = 0, flip_filter: bool = False, gain=1.0):
    """FIR filter keeping the image size; ``padding`` is added on top of the size-preserving padding."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = (px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2)
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain)


def upsample2d(x, f, *, up: int = 2, padding: Padding = 0, flip_filter: bool = False, gain=1.0):
    """Upsample by ``up`` with the FIR filter (gain up**2 so that a constant stays constant)."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = (px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * up * up)


def downsample2d(x, f, *, down: int = 2, padding: Padding = 0, flip_filter: bool = False, gain=1.0):
    """Downsample by ``down`` after the FIR filter."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pad = (
        px0 + (fw - down + 1) // 2,
        px1 + (fw - down) // 2,
        py0 + (fh - down + 1) // 2,
        py1 + (fh - down) // 2,
    )
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain)


# ----------------------------------------------------------------------------------------------------------------
# Bias and activation


class Activation(NamedTuple):
    func: object  # (x, alpha) -> y
    alpha: float  # default shape parameter
    gain: float  # default gain, keeping the output scale of unit-variance inputs


ACTIVATIONS = {
    "linear": Activation(lambda x, alpha: x, 0.0, 1.0),
    "relu": Activation(lambda x, alpha: jax.nn.relu(x), 0.0, float(np.sqrt(2))),
    "lrelu": Activation(lambda x, alpha: jax.nn.leaky_relu(x, alpha), 0.2, float(np.sqrt(2))),
    "tanh": Activation(lambda x, alpha: jnp.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, alpha: jax.nn.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, alpha: jax.nn.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, alpha: jax.nn.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, alpha: jax.nn.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, alpha: jax.nn.sigmoid(x) * x, 0.0, float(np.sqrt(2))),
}


def activation(name: str) -> Activation:
    """The activation called ``name``; a one-line UserError listing the known names otherwise."""
    if name not in ACTIVATIONS:
        raise UserError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def bias_act(x, b=None, *, act: str = "linear", alpha=None, gain=None, clamp=None):
    """Add the bias (along the last axis), apply the activation, multiply by ``gain``, then clamp to [-clamp, clamp].

    ``alpha`` and ``gain`` default to the activation's (lrelu: 0.2 and sqrt(2)); the clamp comes after the gain.
    """
    spec = activation(act)
    alpha = spec.alpha if alpha is None else alpha
    gain = spec.gain if gain is None else gain
    if b is not None:
        x = x + b.astype(x.dtype)
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * jnp.asarray(gain, x.dtype)
    if clamp is not None:
        clamp = jnp.asarray(clamp, x.dtype)
        x = jnp.clip(x, -clamp, clamp)
    return x


# ----------------------------------------------------------------------------------------------------------------
# Convolution with resampling


def _conv(x, w, *, stride: int = 1, padding=((0, 0), (0, 0)), groups: int = 1):
    """Correlation of NHWC x with an HWIO kernel (``in / groups`` input features per group), non-negative padding.

    "matmul": im2col, the kh * kw strided views of x side by side times the kernel as one matrix (one batched
    matrix product over the groups); its gradients are matrix products too.
    """
    kh, kw, cin, cout = w.shape
    (py0, py1), (px0, px1) = padding
    if current_implementation() == "matmul" and stride == groups == 1 and kh == kw > py0 == py1 == px0 == px1:
        return _same_conv(x, w.astype(x.dtype), py0)
    if current_implementation() == "conv":
        return lax.conv_general_dilated(
            x, w.astype(x.dtype), (stride, stride), padding, dimension_numbers=_DIMENSIONS, feature_group_count=groups
        )
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    n, h, wd, c = x.shape
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    views = [
        lax.slice(x, (0, a, b, 0), (n, a + (ho - 1) * stride + 1, b + (wo - 1) * stride + 1, c), (1, stride, stride, 1))
        for a in range(kh)
        for b in range(kw)
    ]
    w = w.astype(x.dtype)
    if groups == 1:
        patches = jnp.concatenate(views, axis=-1).reshape(-1, kh * kw * cin)
        return (patches @ w.reshape(kh * kw * cin, cout)).reshape(n, ho, wo, cout)
    # Groups first: one (N H W, kh kw cin) @ (kh kw cin, out / groups) product per group.
    patches = jnp.concatenate([v.reshape(n * ho * wo, groups, cin).transpose(1, 0, 2) for v in views], axis=-1)
    w = w.reshape(kh * kw * cin, groups, cout // groups).transpose(1, 0, 2)
    y = lax.dot_general(patches, w, (((2,), (1,)), ((0,), (0,))))  # (groups, N H W, out / groups)
    return y.transpose(1, 0, 2).reshape(n, ho, wo, cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _same_conv(x, w, pad: int):
    """Stride-1 correlation with a square kernel, padded by ``pad`` on every side, for XLA:CPU.

    XLA's convolution runs the forward and the input gradient fast, but its kernel gradient (a convolution whose
    window is the whole image) runs up to 5x slower than the same sums written as one matrix product per tap;
    the input gradient is this function again, so second derivatives (R1, path length) take the same paths.
    """
    return lax.conv_general_dilated(x, w, (1, 1), ((pad, pad), (pad, pad)), dimension_numbers=_DIMENSIONS)


def _same_conv_fwd(x, w, pad: int):
    return _same_conv(x, w, pad), (x, w)


def _same_conv_bwd(pad: int, residuals, g):
    x, w = residuals
    k = w.shape[0]
    dx = _same_conv(g, w[::-1, ::-1].transpose(0, 1, 3, 2), k - 1 - pad)
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    h, wd = g.shape[1:3]
    contract = (((0, 1, 2), (0, 1, 2)), ((), ()))
    dw = jnp.stack([lax.dot_general(x[:, a : a + h, b : b + wd], g, contract) for a in range(k) for b in range(k)])
    return dx, dw.reshape(w.shape).astype(w.dtype)


_same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


def _transposed_conv(x, w, *, stride: int, groups: int = 1):
    """Transposed convolution: the correlation of x with ``stride - 1`` zeros inserted between pixels, padded by
    ``k - 1`` on each side, with the HWIO kernel w. (N, H, W, C) -> (N, (H - 1) stride + kh, (W - 1) stride + kw, O).

    "matmul": every input pixel times every kernel tap in one matrix product, then each tap's plane is added at its
    offset (input pixel i, tap a lands on output i * stride + k - 1 - a).
    """
    kh, kw, cin, cout = w.shape
    if current_implementation() == "conv":
        full = ((kh - 1, kh - 1), (kw - 1, kw - 1))
        return lax.conv_general_dilated(
            x,
            w.astype(x.dtype),
            (1, 1),
            full,
            lhs_dilation=(stride, stride),
            dimension_numbers=_DIMENSIONS,
            feature_group_count=groups,
        )
    n, h, wd, _ = x.shape
    x = x.reshape(n * h * wd, groups, cin).transpose(1, 0, 2)
    w = w.astype(x.dtype).reshape(kh * kw, cin, groups, cout // groups).transpose(2, 1, 0, 3)
    taps = lax.dot_general(x, w.reshape(groups, cin, -1), (((2,), (1,)), ((0,), (0,))))  # (g, N H W, kh kw o)
    taps = taps.reshape(groups, n, h, wd, kh, kw, cout // groups).transpose(4, 5, 1, 2, 3, 0, 6)
    zero = jnp.zeros((), x.dtype)
    planes = [
        lax.pad(
            taps[a, b],
            zero,
            [(0, 0, 0), (kh - 1 - a, a, stride - 1), (kw - 1 - b, b, stride - 1), (0, 0, 0), (0, 0, 0)],
        )
        for a in range(kh)
        for b in range(kw)
    ]
    y = sum(planes[1:], planes[0])
    return y.reshape(*y.shape[:3], cout)


def conv2d_resample(
    x,
    w,
    f=None,
    *,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
):
    """2-D convolution with optional FIR upsampling or downsampling, padded once w.r.t. the upsampled image.

    x: (N, H, W, C); w: (kh, kw, C / groups, out); f: resampling filter from `setup_filter`. The order of
    operations follows the official fast paths: 1x1 down = FIR down then conv; 1x1 up = conv then FIR up;
    down = FIR then strided conv; up = transposed (input-dilated) conv then FIR with gain up**2.
    """
    kh, kw = w.shape[:2]
    fw, fh = filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    if not flip_weight:
        w = w[::-1, ::-1]
    pad = (px0, px1, py0, py1)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up * up, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups)
    if up > 1:
        x = _transposed_conv(x, w, stride=up, groups=groups)
        pad = (px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up))
        x = upfirdn2d(x, f, padding=pad, gain=up * up, flip_filter=flip_filter)
        return x if down == 1 else upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=((py0, py0), (px0, px0)), groups=groups)
    x = upfirdn2d(x, None, padding=pad)
    return _conv(x, w, groups=groups)


# ----------------------------------------------------------------------------------------------------------------
# Modulated convolution and minibatch standard deviation


def modulated_conv2d(
    x,
    weight,
    styles,
    noise=None,
    *,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter=None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
):
    """StyleGAN2's modulated convolution: weight (kh, kw, I, O) scaled per sample by styles (N, I), demodulated.

    Non-fused: scale x by the styles, convolve with the shared weight, scale by the demodulation coefficients.
    Fused: build the (N, kh, kw, I, O) per-sample weights and run one grouped convolution (groups = N).
    ``noise`` (broadcastable to the output) is added after demodulation. In a low-precision dtype the weight and
    styles are first normalised by their maxima (no effect on the demodulated result; it avoids overflow).
    """
    n = x.shape[0]
    kh, kw, cin, cout = weight.shape
    if demodulate and x.dtype != jnp.float32:
        weight = weight * (1 / np.sqrt(cin * kh * kw) / jnp.max(jnp.abs(weight), axis=(0, 1, 2), keepdims=True))
        styles = styles / jnp.max(jnp.abs(styles), axis=1, keepdims=True)
    conv = {"f": resample_filter, "up": up, "down": down, "padding": padding, "flip_weight": flip_weight}

    w = None
    if fused_modconv or demodulate and current_implementation() == "conv":
        w = weight[None] * styles[:, None, None, :, None]  # (N, kh, kw, I, O)
    dcoefs = None
    if demodulate and w is not None:
        dcoefs = lax.rsqrt(jnp.sum(jnp.square(w), axis=(1, 2, 3)) + 1e-8)  # (N, O)
    elif demodulate:  # "matmul": the same sums as one (N, I) @ (I, O) product, without the per-sample weights
        dcoefs = lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1)) + 1e-8)

    if not fused_modconv:
        x = x * styles.astype(x.dtype)[:, None, None, :]
        x = conv2d_resample(x, weight.astype(x.dtype), **conv)
        if demodulate:
            x = x * dcoefs.astype(x.dtype)[:, None, None, :]
        return x if noise is None else x + noise.astype(x.dtype)

    if demodulate:
        w = w * dcoefs[:, None, None, None, :]
    _, h, wd, _ = x.shape
    x = x.transpose(1, 2, 0, 3).reshape(1, h, wd, n * cin)
    w = w.transpose(1, 2, 3, 0, 4).reshape(kh, kw, cin, n * cout)
    x = conv2d_resample(x, w.astype(x.dtype), groups=n, **conv)
    x = x.reshape(*x.shape[1:3], n, cout).transpose(2, 0, 1, 3)
    return x if noise is None else x + noise.astype(x.dtype)


def minibatch_std(x, group_size: int | None = 4, num_channels: int = 1):
    """Append ``num_channels`` channels of the mean standard deviation over groups of min(group_size, N) samples.

    Groups are strided as in the official code: sample n belongs to group n mod (N / G). The channels are split
    into ``num_channels`` contiguous chunks, each giving one statistic. x: (N, H, W, C) -> (N, H, W, C + F).
    """
    n, h, w, c = x.shape
    g = n if group_size is None else min(group_size, n)
    f = num_channels
    if n % g or c % f:
        raise UserError(
            f"minibatch std: the batch ({n} per device) must be divisible by the group size {g} "
            f"and the channels ({c}) by mbstd_num_channels {f}"
        )
    y = x.reshape(g, n // g, h, w, f, c // f)
    y = y - y.mean(axis=0)
    y = jnp.sqrt(jnp.square(y).mean(axis=0) + 1e-8)  # (n/G, H, W, F, c)
    y = y.mean(axis=(1, 2, 4))  # (n/G, F)
    y = jnp.tile(y[:, None, None, :], (g, h, w, 1))
    return jnp.concatenate([x, y], axis=-1)
