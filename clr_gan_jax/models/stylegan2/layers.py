"""StyleGAN2's layers with the official equalized learning rate, in NHWC.

Parameters are stored at unit scale and multiplied by a constant gain at run time (``1 / sqrt(fan_in)``, times the
learning-rate multiplier for fully connected layers), so Adam sees the same scale-free parameters as the official
code. Parameter names and layouts mirror the official modules: ``kernel`` is the official ``weight`` transposed
to (in, out) or (kh, kw, in, out) -- not flipped: up=2 layers flip it at run time like the official code -- and
the affine layers' bias starts at 1 (stored as such, unlike the TensorFlow original). A layer computes in the
dtype of its input; the blocks choose that dtype.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.errors import UserError
from clr_gan_jax.models.stylegan2 import ops

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")
DEFAULT_FILTER = (1, 3, 3, 1)


def standard_normal(key, shape, dtype=jnp.float32):
    """N(0, 1) samples of ``shape``, drawn flat: XLA:CPU compiles the threefry draw for some N-D shapes 5x slower."""
    return jax.random.normal(key, (int(np.prod(shape)),), dtype).reshape(shape)


def normal_init(scale: float = 1.0):
    """Initializer: N(0, scale^2)."""

    def init(key, shape, dtype=jnp.float32):
        return standard_normal(key, shape, dtype) * scale

    return init


def check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise UserError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


class FullyConnected(nn.Module):
    """Dense layer: x @ (kernel * lr_multiplier / sqrt(in)) + bias * lr_multiplier, then the activation.

    kernel ~ N(0, 1) / lr_multiplier, bias = bias_init (not divided), so the effective initial values are
    N(0, 1/in) and bias_init at any learning-rate multiplier.
    """

    features: int
    activation: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float = 0.0
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", normal_init(1 / self.lr_multiplier), (fan_in, self.features))
        x = x @ (kernel * (self.lr_multiplier / np.sqrt(fan_in))).astype(x.dtype)
        bias = None
        if self.use_bias:
            bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
            bias = bias * self.lr_multiplier
        return ops.bias_act(x, bias, act=self.activation)


class Conv2dLayer(nn.Module):
    """Convolution with optional FIR up/downsampling, bias, activation and clamp (the official Conv2dLayer).

    ``gain`` scales the activation's default gain and the clamp (sqrt(0.5) in residual branches).
    """

    features: int
    kernel_size: int
    use_bias: bool = True
    activation: str = "linear"
    up: int = 1
    down: int = 1
    resample_filter: Sequence[float] = DEFAULT_FILTER
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, gain: float = 1.0):
        k, fan_in = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", normal_init(), (k, k, fan_in, self.features))
        w = kernel * (1 / np.sqrt(fan_in * k * k))
        x = ops.conv2d_resample(
            x,
            w.astype(x.dtype),
            ops.setup_filter(self.resample_filter),
            up=self.up,
            down=self.down,
            padding=k // 2,
            flip_weight=self.up == 1,
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return ops.bias_act(x, bias, act=self.activation, gain=ops.activation(self.activation).gain * gain, clamp=clamp)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution of the synthesis network (optionally upsampling), noise, bias, lrelu.

    Styles come from an affine layer on w (bias init 1). Noise: 'random' draws N(0, 1) per sample from the
    ``"noise"`` rng stream, 'const' uses the ``noise_const`` buffer (collection ``"noise_const"``), 'none' adds
    nothing; it is scaled by the learned ``noise_strength`` (init 0) and added after demodulation.
    """

    features: int
    resolution: int
    kernel_size: int = 3
    up: int = 1
    use_noise: bool = True
    activation: str = "lrelu"
    resample_filter: Sequence[float] = DEFAULT_FILTER
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, w, *, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1.0):
        check_noise_mode(noise_mode)
        k, fan_in, res = self.kernel_size, x.shape[-1], self.resolution
        styles = FullyConnected(fan_in, bias_init=1.0, name="affine")(w)
        kernel = self.param("kernel", normal_init(), (k, k, fan_in, self.features))

        noise = None
        if self.use_noise:
            noise_const = self.variable(
                "noise_const", "noise_const", lambda: standard_normal(self.make_rng("params"), (res, res))
            )
            strength = self.param("noise_strength", nn.initializers.zeros, ())
            if noise_mode == "random":
                noise = standard_normal(self.make_rng("noise"), (x.shape[0], res, res, 1)) * strength
            elif noise_mode == "const":
                noise = noise_const.value[:, :, None] * strength

        x = ops.modulated_conv2d(
            x,
            kernel,
            styles,
            noise,
            up=self.up,
            padding=k // 2,
            resample_filter=ops.setup_filter(self.resample_filter),
            flip_weight=self.up == 1,
            fused_modconv=fused_modconv,
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        clamp = None if self.conv_clamp is None else self.conv_clamp * gain
        return ops.bias_act(x, bias, act=self.activation, gain=ops.activation(self.activation).gain * gain, clamp=clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation; linear, clamped."""

    features: int
    kernel_size: int = 1
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, w, *, fused_modconv: bool = True):
        k, fan_in = self.kernel_size, x.shape[-1]
        styles = FullyConnected(fan_in, bias_init=1.0, name="affine")(w) * (1 / np.sqrt(fan_in * k * k))
        kernel = self.param("kernel", normal_init(), (k, k, fan_in, self.features))
        x = ops.modulated_conv2d(x, kernel, styles, padding=k // 2, demodulate=False, fused_modconv=fused_modconv)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return ops.bias_act(x, bias, clamp=self.conv_clamp)


def one_hot_labels(labels, c_dim: int, who: str):
    """int class ids (N,) -> float32 one-hot (N, c_dim) for a conditional network; None when c_dim == 0."""
    if c_dim == 0:
        return None
    if labels is None:
        raise UserError(f"the {who} is conditional (c_dim={c_dim}): pass labels, int class ids of shape (N,)")
    labels = jnp.asarray(labels)
    if labels.ndim != 1 or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise UserError(f"{who} labels must be int class ids of shape (N,), got {labels.dtype} {labels.shape}")
    return jax.nn.one_hot(labels, c_dim, dtype=jnp.float32)


def check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise UserError(f"StyleGAN2 architecture must be one of {ARCHITECTURES}, got {architecture!r}")


def block_channels(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps of the blocks at ``resolution``: min(channel_base // resolution, channel_max)."""
    return min(channel_base // resolution, channel_max)


def check_resolution(img_resolution: int) -> int:
    """log2 of a power-of-two resolution >= 4."""
    log2 = int(np.log2(img_resolution)) if img_resolution >= 4 else 0
    if img_resolution < 4 or 2**log2 != img_resolution:
        raise UserError(f"StyleGAN2 needs a power-of-two image resolution >= 4, got {img_resolution}")
    return log2


def fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    """Lowest resolution whose blocks compute in the reduced precision: the top ``num_fp16_res`` ones, never 4x4."""
    return max(2 ** (check_resolution(img_resolution) + 1 - num_fp16_res), 8)
