"""The GAN zoo's SimpleCNN (DCGAN) generator and discriminator, generalised over resolution.

At 32x32 with ``width=1024`` these are exactly the reference layers:
G: ConvT(z->1024, k4 s1 p0) -> [BN, ReLU, ConvT(k4 s2 p1)] x3 (512, 256, C) -> tanh.
D: Conv(C->256, k4 s2 p1), LReLU(0.2), [Conv(k4 s2 p1), BN, LReLU] x2 (512, 1024), Conv(1024->1, k4 s1 p0).
Each extra power of two adds one upsampling (downsampling) stage, halving (doubling)
the width per stage away from the 4x4 end. Init: conv weights N(0, 0.02), biases 0,
BN scale N(1, 0.02), BN bias 0. BN follows PyTorch's defaults (momentum 0.1, eps 1e-5).
SNGAN is the same D with spectral normalisation (one power iteration per training call,
its vectors in the ``spectral`` collection) on every convolution, BatchNorm kept.

``matmul_dtype`` is the operand dtype of the layers' matrix products and ``conv_impl`` their
arithmetic on each backend (see `layers`); neither changes the parameters.
"""

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from clr_gan_jax.models import layers

SPECTRAL_COLLECTION = "spectral"


def _batch_norm(train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=lambda key, shape, dtype=jnp.float32: 1.0 + layers.dcgan_init(key, shape, dtype),
    )


def num_stages(resolution: int) -> int:
    """Number of stride-2 stages between 4x4 and ``resolution``."""
    stages = int(math.log2(resolution)) - 2 if resolution >= 8 else 0
    if stages < 1 or 4 * 2**stages != resolution:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return stages


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> images (N, R, R, channels) in [-1, 1]."""

    resolution: int = 32
    channels: int = 3
    width: int = 1024
    matmul_dtype: Any = jnp.float32
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = False):
        del labels  # unconditional
        stages = num_stages(self.resolution)
        x = layers.Project(self.width, matmul_dtype=self.matmul_dtype)(z)
        for i in range(stages):
            x = nn.relu(_batch_norm(train)(x))
            features = self.channels if i == stages - 1 else self.width // 2 ** (i + 1)
            x = layers.UpConv(features, matmul_dtype=self.matmul_dtype, conv_impl=self.conv_impl)(x)
        return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
    """images (N, R, R, C) -> {'logits': (N,), 'features': (N, 16 * width), head: (N, width) for each head}.

    ``features`` is the last 4x4 feature map, flattened; the logit and every head in
    ``heads`` ((name, width) pairs, e.g. CLR's ('phi', z_dim)) are k4 s1 p0 convolutions on
    that map, i.e. linear read-outs of D's penultimate features. Heads are not spectrally
    normalised.
    """

    resolution: int = 32
    width: int = 1024
    heads: tuple[tuple[str, int], ...] = ()
    spectral_norm: bool = False
    matmul_dtype: Any = jnp.float32
    conv_impl: str = "auto"

    def _normalised(self, layer: nn.Module, train: bool):
        if not self.spectral_norm:
            return layer
        wrapped = nn.SpectralNorm(layer, collection_name=SPECTRAL_COLLECTION)
        return lambda x: wrapped(x, update_stats=train)

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = False):
        del labels  # unconditional
        stages = num_stages(self.resolution)
        for i in range(stages):
            features = self.width // 2 ** (stages - 1 - i)
            conv = layers.DownConv(features, matmul_dtype=self.matmul_dtype, conv_impl=self.conv_impl, name=f"Conv_{i}")
            x = self._normalised(conv, train)(x)
            if i > 0:
                x = _batch_norm(train)(x)
            x = nn.leaky_relu(x, 0.2)
        logit = layers.Reduce(1, matmul_dtype=self.matmul_dtype, name="logit")
        outputs = {"logits": self._normalised(logit, train)(x)[:, 0], "features": x.reshape(x.shape[0], -1)}
        for name, width in self.heads:
            outputs[name] = layers.Reduce(width, matmul_dtype=self.matmul_dtype, name=name)(x)
        return outputs
