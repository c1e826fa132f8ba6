"""LPIPS v0.1 with AlexNet features (Zhang et al., CVPR 2018), the reconstruction loss of GLeaD.

For NHWC images x, y in [-1, 1]:

    d(x, y) = sum_l  w_l . mean_hw (f_l(x) - f_l(y))^2

where f_l are the outputs of the five ReLUs of torchvision's AlexNet ``features`` (64, 192, 384,
256, 256 channels) applied to (x - shift) / scale, each divided by its L2 norm over channels
(+1e-10), and w_l >= 0 are the learned v0.1 ``lin`` weights (1x1 convolutions without bias in
the original; applied after the spatial mean here, which is the same linear map).

The weights come from PyTorch once, through ``convert_lpips``; this module needs no PyTorch.
The .npz holds one array per parameter under its Flax path: 'alexnet/conv1/kernel' (HWIO),
'alexnet/conv1/bias', ..., 'alexnet/conv5/bias', and 'lin1' ... 'lin5' (one weight per channel).
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax import npz
from clr_gan_jax.errors import UserError

CHANNELS = (64, 192, 384, 256, 256)
# (kernel size, stride, padding) of conv1..conv5; a 3x3 stride-2 max pool follows conv1 and conv2.
_CONVS = ((11, 4, 2), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1))
_POOLED = (True, True, False, False, False)
# Smallest side that leaves the second max pool a 3x3 window: 31 -> conv1 7 -> pool 3 -> conv2 3 -> pool 1.
MIN_SIZE = 31
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10

HOW_TO_GET = (
    "convert torchvision's alexnet-owt-7be5be79.pth and LPIPS v0.1's alex.pth with `python -m "
    "clr_gan_jax.metrics.convert_lpips --alexnet=alexnet-owt-7be5be79.pth --lin=alex.pth --dest=lpips_alex.npz` "
    "(see that module's docstring for where the two files come from)"
)


class AlexNetFeatures(nn.Module):
    """torchvision AlexNet's ``features`` up to the last ReLU; returns the five ReLU outputs (NHWC)."""

    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
        taps = []
        for i, (channels, (kernel, stride, pad), pooled) in enumerate(zip(CHANNELS, _CONVS, _POOLED), start=1):
            x = nn.Conv(
                channels,
                (kernel, kernel),
                strides=stride,
                padding=((pad, pad), (pad, pad)),
                precision=self.precision,
                name=f"conv{i}",
            )(x)
            x = nn.relu(x)
            taps.append(x)
            if pooled:
                x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
        return tuple(taps)


def _unit_normalize(features: jax.Array) -> jax.Array:
    """f / (||f||_channels + eps). Where a ReLU output is 0 in every channel the gradient of the norm
    is NaN, but the ReLU's own gradient there is exactly 0 (a select), so input gradients stay finite."""
    norm = jnp.sqrt(jnp.sum(jnp.square(features), axis=-1, keepdims=True))
    return features / (norm + EPS)


class LPIPS(nn.Module):
    """Per-sample LPIPS distances (N,) between two NHWC batches in [-1, 1] of the same shape.

    Attributes:
      precision: convolution precision; None is the backend default (fast, but reduced precision
        on TPUs and on GPUs with TF32), ``jax.lax.Precision.HIGHEST`` keeps float32 for metrics.
    """

    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        check_images(x, y)
        n = x.shape[0]
        shift, scale = jnp.asarray(SHIFT), jnp.asarray(SCALE)
        both = (jnp.concatenate([x, y]) - shift) / scale  # one pass through AlexNet for both batches
        distance = 0.0
        for i, (channels, tap) in enumerate(zip(CHANNELS, AlexNetFeatures(self.precision, name="alexnet")(both)), 1):
            tap = _unit_normalize(tap)
            squared = jnp.mean(jnp.square(tap[:n] - tap[n:]), axis=(1, 2))  # (N, C)
            weight = self.param(f"lin{i}", nn.initializers.ones, (channels,))
            distance = distance + squared @ weight
        return distance


def check_images(x: jax.Array, y: jax.Array) -> None:
    """Raises UserError unless x and y are equal-shape NHWC RGB batches at least MIN_SIZE pixels a side."""
    if x.shape != y.shape:
        raise UserError(f"LPIPS compares batches of one shape, got {x.shape} and {y.shape}: resize one of them.")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise UserError(f"LPIPS expects NHWC RGB images (N, H, W, 3), got shape {x.shape}.")
    if min(x.shape[1:3]) < MIN_SIZE:
        raise UserError(
            f"LPIPS (AlexNet) needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got {x.shape[1]}x{x.shape[2]}: "
            "upsample them first."
        )


def lpips_distance(variables: dict, x: jax.Array, y: jax.Array, precision: Any = None) -> jax.Array:
    """LPIPS distances (N,) between NHWC images x, y in [-1, 1]; jittable and differentiable in x and y.

    GLeaD's loss is the batch mean of these distances.
    """
    return LPIPS(precision).apply(variables, x, y)


@functools.cache
def variable_shapes() -> dict[str, tuple[int, ...]]:
    """Flat parameter name ('alexnet/conv1/kernel', ..., 'lin5') -> shape."""
    images = jax.ShapeDtypeStruct((1, MIN_SIZE, MIN_SIZE, 3), jnp.float32)
    shapes = jax.eval_shape(LPIPS().init, jax.random.key(0), images, images)
    return {name: tuple(leaf.shape) for name, leaf in npz.flatten(shapes["params"]).items()}


def check_variables(found: dict[str, tuple[int, ...]], source: str) -> None:
    """Raises UserError naming the missing, unexpected and misshaped parameters of ``found`` (name -> shape)."""
    expected = variable_shapes()
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    common = sorted(set(expected) & set(found))
    misshaped = [f"{n} {tuple(found[n])} instead of {expected[n]}" for n in common if tuple(found[n]) != expected[n]]
    if missing or unexpected or misshaped:
        raise UserError(
            f"{source} does not hold the LPIPS AlexNet weights: missing {missing[:5]} ({len(missing)} in all), "
            f"unexpected {unexpected[:5]} ({len(unexpected)} in all), wrong shape {misshaped}; {HOW_TO_GET}."
        )


def load_lpips(path: str) -> dict:
    """Reads the .npz written by convert_lpips into ``{'params': ...}`` for ``lpips_distance``."""
    flat = npz.read(path, "LPIPS weights", HOW_TO_GET)
    check_variables({name: np.shape(value) for name, value in flat.items()}, path)
    try:
        flat = {name: value.astype(np.float32) for name, value in flat.items()}
    except (TypeError, ValueError) as e:
        raise UserError(f"LPIPS weights {path} hold arrays that are not numbers ({e}): {HOW_TO_GET}.") from None
    return {"params": npz.unflatten(flat)}
