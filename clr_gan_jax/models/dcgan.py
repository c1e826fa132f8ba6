"""The GAN zoo's SimpleCNN (DCGAN) generator and discriminator, generalised over resolution.

At 32x32 with ``width=1024`` these are exactly the reference layers:
G: ConvT(z->1024, k4 s1 p0) -> [BN, ReLU, ConvT(k4 s2 p1)] x3 (512, 256, C) -> tanh.
D: Conv(C->256, k4 s2 p1), LReLU(0.2), [Conv(k4 s2 p1), BN, LReLU] x2 (512, 1024), Conv(1024->1, k4 s1 p0).
Each extra power of two adds one upsampling (downsampling) stage, halving (doubling)
the width per stage away from the 4x4 end. Init: conv weights N(0, 0.02), biases 0,
BN scale N(1, 0.02), BN bias 0. BN follows PyTorch's defaults (momentum 0.1, eps 1e-5).
SNGAN is the same D with spectral normalisation (one power iteration per training call,
its vectors in the ``spectral`` collection) on every convolution, BatchNorm kept.
``batch_norm=False`` drops every BatchNorm of G and D (the zoo's ``with_bn: false``, its InfoGAN setting).

With ``num_classes`` > 0 the networks are class-conditional (the zoo's simple_cnn_cond, plus a
projection D). G: ``'concat'`` feeds [z, one_hot(y)] to its first layer (CGAN); ``'cbn'``
replaces every BatchNorm's scale and shift by per-class ones (conditional BatchNorm, initialised
to 1 and 0). D: ``'concat'`` appends one_hot(y) as constant maps to its input channels (CGAN);
``'projection'`` adds <embed(y), features> to the logit (Miyato & Koyama 2018), the embedding
being as wide as D's flattened 4x4 features, which the logit also reads linearly; ``'none'``
leaves D unconditional (ACGAN, whose class head is the aux_classifier plugin's).

``matmul_dtype`` is the operand dtype of the layers' matrix products and ``conv_impl`` their
arithmetic on each backend (see `layers`); neither changes the parameters.
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from clr_gan_jax.models import layers

SPECTRAL_COLLECTION = "spectral"
G_CONDITIONINGS = ("concat", "cbn")
D_CONDITIONINGS = ("concat", "projection", "none")


def _batch_norm(train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=lambda key, shape, dtype=jnp.float32: 1.0 + layers.dcgan_init(key, shape, dtype),
    )


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine part, then a scale and shift looked up per class (the zoo's init: 1, 0)."""

    num_classes: int

    @nn.compact
    def __call__(self, x, labels, *, train: bool):
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, use_scale=False, use_bias=False)(x)
        scale = nn.Embed(self.num_classes, x.shape[-1], embedding_init=nn.initializers.ones, name="scale")(labels)
        shift = nn.Embed(self.num_classes, x.shape[-1], embedding_init=nn.initializers.zeros, name="shift")(labels)
        return x * scale[:, None, None, :] + shift[:, None, None, :]


def num_stages(resolution: int) -> int:
    """Number of stride-2 stages between 4x4 and ``resolution``."""
    stages = int(math.log2(resolution)) - 2 if resolution >= 8 else 0
    if stages < 1 or 4 * 2**stages != resolution:
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    return stages


class DCGANGenerator(nn.Module):
    """z (N, z_dim) and, when conditional, int labels (N,) -> images (N, R, R, channels) in [-1, 1]."""

    resolution: int = 32
    channels: int = 3
    width: int = 1024
    num_classes: int = 0
    conditioning: str = "concat"
    matmul_dtype: Any = jnp.float32
    conv_impl: str = "auto"
    batch_norm: bool = True

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = False):
        stages = num_stages(self.resolution)
        cbn = self.num_classes > 0 and self.conditioning == "cbn"
        if self.num_classes > 0 and self.conditioning == "concat":
            z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)
        x = layers.Project(self.width, matmul_dtype=self.matmul_dtype)(z)
        for i in range(stages):
            if cbn:
                x = ConditionalBatchNorm(self.num_classes)(x, labels, train=train)
            elif self.batch_norm:
                x = _batch_norm(train)(x)
            x = nn.relu(x)
            features = self.channels if i == stages - 1 else self.width // 2 ** (i + 1)
            x = layers.UpConv(features, matmul_dtype=self.matmul_dtype, conv_impl=self.conv_impl)(x)
        return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
    """images (N, R, R, C) -> {'logits': (N,), 'features': (N, 16 * width), head: (N, width) for each head}.

    ``num_outputs`` > 1 makes the logits (N, num_outputs) (RealnessGAN's distribution over outcomes).

    ``features`` is the last 4x4 feature map, flattened; the logit and every head in
    ``heads`` ((name, width) pairs, e.g. CLR's ('phi', z_dim)) are k4 s1 p0 convolutions on
    that map, i.e. linear read-outs of D's penultimate features. Heads (and the projection's
    embedding) are not spectrally normalised. A conditional D takes int labels (N,).
    """

    resolution: int = 32
    width: int = 1024
    heads: tuple[tuple[str, int], ...] = ()
    spectral_norm: bool = False
    num_classes: int = 0
    conditioning: str = "concat"
    matmul_dtype: Any = jnp.float32
    conv_impl: str = "auto"
    num_outputs: int = 1
    batch_norm: bool = True

    def _normalised(self, layer: nn.Module, train: bool):
        if not self.spectral_norm:
            return layer
        wrapped = nn.SpectralNorm(layer, collection_name=SPECTRAL_COLLECTION)
        return lambda x: wrapped(x, update_stats=train)

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = False):
        conditioning = self.conditioning if self.num_classes > 0 else "none"
        if conditioning == "concat":
            maps = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)[:, None, None, :]
            x = jnp.concatenate([x, jnp.broadcast_to(maps, (*x.shape[:3], self.num_classes))], axis=-1)
        stages = num_stages(self.resolution)
        for i in range(stages):
            features = self.width // 2 ** (stages - 1 - i)
            conv = layers.DownConv(features, matmul_dtype=self.matmul_dtype, conv_impl=self.conv_impl, name=f"Conv_{i}")
            x = self._normalised(conv, train)(x)
            if i > 0 and self.batch_norm:
                x = _batch_norm(train)(x)
            x = nn.leaky_relu(x, 0.2)
        logit = layers.Reduce(self.num_outputs, matmul_dtype=self.matmul_dtype, name="logit")
        logits = self._normalised(logit, train)(x)
        outputs = {"logits": logits[:, 0] if self.num_outputs == 1 else logits, "features": x.reshape(x.shape[0], -1)}
        if conditioning == "projection":
            features = outputs["features"]
            embedding = nn.Embed(self.num_classes, features.shape[-1], embedding_init=layers.dcgan_init, name="embed")
            outputs["logits"] = outputs["logits"] + jnp.sum(embedding(labels) * features, axis=-1)
        for name, width in self.heads:
            outputs[name] = layers.Reduce(width, matmul_dtype=self.matmul_dtype, name=name)(x)
        return outputs
