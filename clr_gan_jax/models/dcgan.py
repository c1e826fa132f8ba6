"""The GAN zoo's SimpleCNN (DCGAN) generator and discriminator, generalised over resolution.

At 32x32 with ``width=1024`` these are exactly the reference layers:
G: ConvT(z->1024, k4 s1 p0) -> [BN, ReLU, ConvT(k4 s2 p1)] x3 (512, 256, C) -> tanh.
D: Conv(C->256, k4 s2 p1), LReLU(0.2), [Conv(k4 s2 p1), BN, LReLU] x2 (512, 1024), Conv(1024->1, k4 s1 p0).
Each extra power of two adds one upsampling (downsampling) stage, halving (doubling)
the width per stage away from the 4x4 end. Init: conv weights N(0, 0.02), biases 0,
BN scale N(1, 0.02), BN bias 0. BN follows PyTorch's defaults (momentum 0.1, eps 1e-5).

``matmul_dtype`` is the operand dtype of the layers' matrix products (see `layers.matmul`).
"""

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from clr_gan_jax.models import layers


def _batch_norm(train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=lambda key, shape, dtype=jnp.float32: 1.0 + layers.dcgan_init(key, shape, dtype),
    )


def num_stages(resolution: int) -> int:
    """Number of stride-2 stages between 4x4 and ``resolution``."""
    stages = int(math.log2(resolution)) - 2
    if stages < 1 or 4 * 2**stages != resolution:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return stages


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> images (N, R, R, channels) in [-1, 1]."""

    resolution: int = 32
    channels: int = 3
    width: int = 1024
    matmul_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z, train: bool = True):
        stages = num_stages(self.resolution)
        x = layers.Project(self.width, matmul_dtype=self.matmul_dtype)(z)
        for i in range(stages):
            x = nn.relu(_batch_norm(train)(x))
            last = i == stages - 1
            x = layers.UpConv(self.channels if last else self.width // 2 ** (i + 1), matmul_dtype=self.matmul_dtype)(x)
        return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
    """images (N, R, R, C) -> (logits (N,), phi (N, phi_dim)).

    phi, the CLR head, is a k4 s1 p0 convolution on the last 4x4 feature map, beside
    the logit convolution: a linear read-out of D's penultimate features.
    """

    resolution: int = 32
    width: int = 1024
    phi_dim: int = 100
    matmul_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        stages = num_stages(self.resolution)
        for i in range(stages):
            # named as nn.Conv named it, so checkpoints written before the im2col form still load
            x = layers.DownConv(self.width // 2 ** (stages - 1 - i), matmul_dtype=self.matmul_dtype, name=f"Conv_{i}")(x)
            if i > 0:
                x = _batch_norm(train)(x)
            x = nn.leaky_relu(x, 0.2)
        logits = layers.Reduce(1, matmul_dtype=self.matmul_dtype, name="logit")(x)[:, 0]
        phi = layers.Reduce(self.phi_dim, matmul_dtype=self.matmul_dtype, name="phi")(x)
        return logits, phi
