"""The FID Inception-v3 (TF graph of 2015-12-05) as a Flax Linen module.

Topology: torchvision's Inception-v3 with 1008 logits and no auxiliary head, with
the changes of the TF graph (as in pytorch-fid's ``FIDInception*`` blocks): the
3x3 average pools of Mixed_5b..5d, 6b..6e and 7b ignore the padding, the pool of
Mixed_7c is a max pool, BatchNorm eps is 1e-3 and convolutions have no bias.
Layout is NHWC throughout.

Input handling (``resize_mode``):

* ``'pytorch'``: pytorch-fid. Images in [0, 1] are resized to 299x299 bilinearly
  (half-pixel centres, no antialiasing), then mapped to [-1, 1] by 2x - 1.
* ``'tf1'``: the original TF FID code, as torch-fidelity reproduces it. Images in
  [0, 255] are resized with TF1's ``resize_bilinear`` (source = dst * in / out, no
  half-pixel offset), then mapped by (x - 128) / 128.

Reference statistics are only comparable between runs that use the same mode.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

INPUT_SIZE = 299
NUM_LOGITS = 1008
FEATURE_DIM = 2048
RESIZE_MODES = ("pytorch", "tf1")


def interpolation_matrix(in_size: int, out_size: int, mode: str) -> np.ndarray:
    """(out_size, in_size) float32 matrix of a 1-D bilinear resize without antialiasing."""
    dst = np.arange(out_size, dtype=np.float64)
    scale = in_size / out_size
    if mode == "pytorch":
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    elif mode == "tf1":
        # float32 arithmetic as in TF1's kernel (and torch-fidelity's replica of it).
        src = dst.astype(np.float32) * np.float32(scale)
    else:
        raise ValueError(f"resize_mode={mode!r} is not one of {RESIZE_MODES}.")
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = (src - lo).astype(np.float64)
    matrix = np.zeros((out_size, in_size), np.float64)
    np.add.at(matrix, (np.arange(out_size), lo), 1.0 - frac)
    np.add.at(matrix, (np.arange(out_size), hi), frac)
    return matrix.astype(np.float32)


def preprocess(images: jax.Array, resize_mode: str) -> jax.Array:
    """uint8 [0, 255] or float [-1, 1] NHWC images (1 or 3 channels) -> the network's 299x299x3 input."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"Inception expects NHWC images with 1 or 3 channels, got shape {images.shape}.")
    if images.dtype == jnp.uint8:
        unit = images.astype(jnp.float32) / 255.0
    else:
        unit = (images.astype(jnp.float32) + 1.0) / 2.0
    if images.shape[-1] == 1:
        unit = jnp.repeat(unit, 3, axis=-1)
    _, height, width, _ = images.shape
    rows = jnp.asarray(interpolation_matrix(height, INPUT_SIZE, resize_mode))
    cols = jnp.asarray(interpolation_matrix(width, INPUT_SIZE, resize_mode))
    resized = jnp.einsum("oh,nhwc,pw->nopc", rows, unit, cols, precision=jax.lax.Precision.HIGHEST)
    if resize_mode == "tf1":
        return (resized * 255.0 - 128.0) / 128.0
    return resized * 2.0 - 1.0


def _pad(padding: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return ((ph, ph), (pw, pw))


class ConvBN(nn.Module):
    """Convolution without bias, BatchNorm with running statistics (eps 1e-3), ReLU."""

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: int | tuple[int, int] = 0
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(
            self.features,
            self.kernel_size,
            strides=self.strides,
            padding=_pad(self.padding),
            use_bias=False,
            precision=self.precision,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3(x):
    """3x3 stride-1 average pool that averages over the valid (unpadded) pixels only, as TF."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=_pad(1), count_include_pad=False)


def _max_pool_3x3(x, strides: int, padding: int):
    return nn.max_pool(x, (3, 3), strides=(strides, strides), padding=_pad(padding))


class InceptionA(nn.Module):
    """Mixed_5b..5d: 35x35 block."""

    pool_features: int
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, p, name: ConvBN(f, k, padding=p, precision=self.precision, name=name)
        b1 = conv(64, (1, 1), 0, "branch1x1")(x)
        b5 = conv(48, (1, 1), 0, "branch5x5_1")(x)
        b5 = conv(64, (5, 5), 2, "branch5x5_2")(b5)
        b3 = conv(64, (1, 1), 0, "branch3x3dbl_1")(x)
        b3 = conv(96, (3, 3), 1, "branch3x3dbl_2")(b3)
        b3 = conv(96, (3, 3), 1, "branch3x3dbl_3")(b3)
        bp = conv(self.pool_features, (1, 1), 0, "branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a: 35x35 -> 17x17 reduction."""

    precision: Any = None

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, s, p, name: ConvBN(f, k, strides=s, padding=p, precision=self.precision, name=name)
        b3 = conv(384, (3, 3), 2, 0, "branch3x3")(x)
        bd = conv(64, (1, 1), 1, 0, "branch3x3dbl_1")(x)
        bd = conv(96, (3, 3), 1, 1, "branch3x3dbl_2")(bd)
        bd = conv(96, (3, 3), 2, 0, "branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b..6e: 17x17 block with factorised 7x7 convolutions."""

    channels_7x7: int
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, p, name: ConvBN(f, k, padding=p, precision=self.precision, name=name)
        c7 = self.channels_7x7
        b1 = conv(192, (1, 1), 0, "branch1x1")(x)
        b7 = conv(c7, (1, 1), 0, "branch7x7_1")(x)
        b7 = conv(c7, (1, 7), (0, 3), "branch7x7_2")(b7)
        b7 = conv(192, (7, 1), (3, 0), "branch7x7_3")(b7)
        bd = conv(c7, (1, 1), 0, "branch7x7dbl_1")(x)
        bd = conv(c7, (7, 1), (3, 0), "branch7x7dbl_2")(bd)
        bd = conv(c7, (1, 7), (0, 3), "branch7x7dbl_3")(bd)
        bd = conv(c7, (7, 1), (3, 0), "branch7x7dbl_4")(bd)
        bd = conv(192, (1, 7), (0, 3), "branch7x7dbl_5")(bd)
        bp = conv(192, (1, 1), 0, "branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a: 17x17 -> 8x8 reduction."""

    precision: Any = None

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, s, p, name: ConvBN(f, k, strides=s, padding=p, precision=self.precision, name=name)
        b3 = conv(192, (1, 1), 1, 0, "branch3x3_1")(x)
        b3 = conv(320, (3, 3), 2, 0, "branch3x3_2")(b3)
        b7 = conv(192, (1, 1), 1, 0, "branch7x7x3_1")(x)
        b7 = conv(192, (1, 7), 1, (0, 3), "branch7x7x3_2")(b7)
        b7 = conv(192, (7, 1), 1, (3, 0), "branch7x7x3_3")(b7)
        b7 = conv(192, (3, 3), 2, 0, "branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b (average pool branch) and Mixed_7c (max pool branch, as in the TF graph)."""

    pool: str
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, p, name: ConvBN(f, k, padding=p, precision=self.precision, name=name)
        b1 = conv(320, (1, 1), 0, "branch1x1")(x)
        b3 = conv(384, (1, 1), 0, "branch3x3_1")(x)
        b3 = jnp.concatenate(
            [conv(384, (1, 3), (0, 1), "branch3x3_2a")(b3), conv(384, (3, 1), (1, 0), "branch3x3_2b")(b3)], axis=-1
        )
        bd = conv(448, (1, 1), 0, "branch3x3dbl_1")(x)
        bd = conv(384, (3, 3), 1, "branch3x3dbl_2")(bd)
        bd = jnp.concatenate(
            [conv(384, (1, 3), (0, 1), "branch3x3dbl_3a")(bd), conv(384, (3, 1), (1, 0), "branch3x3dbl_3b")(bd)],
            axis=-1,
        )
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else _max_pool_3x3(x, 1, 1)
        bp = conv(192, (1, 1), 0, "branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
    """FID Inception-v3: NHWC images -> (pool3 features (N, 2048), logits (N, 1008)).

    Attributes:
      resize_mode: 'pytorch' (pytorch-fid) or 'tf1' (original TF code, torch-fidelity).
      precision: convolution precision. HIGHEST keeps float32 on GPUs and TPUs,
        whose default would drop to TF32 / bfloat16 and shift the statistics.
    """

    resize_mode: str = "pytorch"
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, images):
        x = preprocess(images, self.resize_mode)
        conv = lambda f, k, s, p, name: ConvBN(f, k, strides=s, padding=p, precision=self.precision, name=name)
        x = conv(32, (3, 3), 2, 0, "Conv2d_1a_3x3")(x)
        x = conv(32, (3, 3), 1, 0, "Conv2d_2a_3x3")(x)
        x = conv(64, (3, 3), 1, 1, "Conv2d_2b_3x3")(x)
        x = _max_pool_3x3(x, 2, 0)
        x = conv(80, (1, 1), 1, 0, "Conv2d_3b_1x1")(x)
        x = conv(192, (3, 3), 1, 0, "Conv2d_4a_3x3")(x)
        x = _max_pool_3x3(x, 2, 0)
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            x = InceptionA(pool_features, self.precision, name=name)(x)
        x = InceptionB(self.precision, name="Mixed_6a")(x)
        for name, channels in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = InceptionC(channels, self.precision, name=name)(x)
        x = InceptionD(self.precision, name="Mixed_7a")(x)
        x = InceptionE("avg", self.precision, name="Mixed_7b")(x)
        x = InceptionE("max", self.precision, name="Mixed_7c")(x)
        pool3 = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(NUM_LOGITS, precision=self.precision, name="fc")(pool3)
        return pool3, logits


def variable_shapes(resize_mode: str = "pytorch") -> dict:
    """The module's variables as ShapeDtypeStructs (no weights are computed)."""
    images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.uint8)
    return jax.eval_shape(InceptionV3(resize_mode).init, jax.random.key(0), images)
