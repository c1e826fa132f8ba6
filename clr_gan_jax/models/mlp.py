"""The GAN zoo's SimpleMLP for 2-D data (Ring8, Grid25), and its VEEGAN variants.

G: Linear(z->256), [LReLU(0.2), Linear(256->256)] x2, LReLU, Linear(256->2), tanh.
D: Linear(2->256), [LReLU, Linear(256->256)] x2, LReLU, Linear(256->1); every head (e.g.
CLR's phi) is a linear layer beside the logit on the same penultimate features. Weights use
PyTorch's default Linear init (uniform with bound 1/sqrt(fan_in)); biases start at zero.
With ``spectral_norm`` every D layer but the heads is spectrally normalised. With ``batch_norm``
(the zoo's VEEGAN MLPs) a BatchNorm precedes every LReLU of G and every LReLU of D but the first.
VEEGAN's D is joint (``latent_dim`` > 0): it reads a point and a latent, concatenated; its
reconstructor `MLPReconstructor` is D's trunk with a linear output of the latent's width.
"""

import flax.linen as nn
import jax.numpy as jnp

torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
SPECTRAL_COLLECTION = "spectral"


def _dense(features: int, name: str | None = None) -> nn.Dense:
    return nn.Dense(features, kernel_init=torch_linear_init, name=name)


def _batch_norm(train: bool) -> nn.BatchNorm:
    """PyTorch's BatchNorm1d: momentum 0.1 (flax's 0.9), eps 1e-5, scale 1, bias 0."""
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


def _activation(x, normalise: bool, train: bool):
    return nn.leaky_relu(_batch_norm(train)(x) if normalise else x, 0.2)


def _trunk(x, layer, hidden: int, depth: int, batch_norm: bool, train: bool):
    """D's and the reconstructor's body: the activations after the last hidden layer (``layer(width)`` makes one)."""
    x = layer(hidden)(x)
    for i in range(depth):
        x = layer(hidden)(_activation(x, batch_norm and i > 0, train))
    return _activation(x, batch_norm, train)


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> points (N, out_dim), in [-1, 1] with ``tanh``."""

    out_dim: int = 2
    hidden: int = 256
    depth: int = 2
    batch_norm: bool = False

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = False):
        del labels  # unconditional
        x = _dense(self.hidden)(z)
        for _ in range(self.depth):
            x = _dense(self.hidden)(_activation(x, self.batch_norm, train))
        return jnp.tanh(_dense(self.out_dim)(_activation(x, self.batch_norm, train)))


class MLPDiscriminator(nn.Module):
    """points (N, in_dim) -> {'logits': (N,), 'features': (N, hidden), head: (N, width) for each head}.

    ``num_outputs`` > 1 makes the logits (N, num_outputs) (RealnessGAN's distribution over outcomes).
    With ``latent_dim`` > 0 (VEEGAN's joint D) the second argument is a latent (N, latent_dim) read with the points;
    None reads zeros in its place (D on the points alone).
    """

    hidden: int = 256
    depth: int = 2
    heads: tuple[tuple[str, int], ...] = ()
    spectral_norm: bool = False
    num_outputs: int = 1
    batch_norm: bool = False
    latent_dim: int = 0

    def _layer(self, features: int, train: bool, name: str | None = None):
        dense = _dense(features, name)
        if not self.spectral_norm:
            return dense
        wrapped = nn.SpectralNorm(dense, collection_name=SPECTRAL_COLLECTION)
        return lambda x: wrapped(x, update_stats=train)

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = False):
        if self.latent_dim:
            latents = jnp.zeros((x.shape[0], self.latent_dim), x.dtype) if labels is None else labels
            x = jnp.concatenate([x, latents], axis=-1)
        x = _trunk(x, lambda width: self._layer(width, train), self.hidden, self.depth, self.batch_norm, train)
        logits = self._layer(self.num_outputs, train, name="logit")(x)
        outputs = {"logits": logits[:, 0] if self.num_outputs == 1 else logits, "features": x}
        for name, width in self.heads:
            outputs[name] = _dense(width, name)(x)
        return outputs


class MLPReconstructor(nn.Module):
    """VEEGAN's F: points (N, in_dim) -> latents (N, out_dim), D's trunk with a linear output."""

    out_dim: int
    hidden: int = 256
    depth: int = 2
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        features = _trunk(x, _dense, self.hidden, self.depth, self.batch_norm, train)
        return _dense(self.out_dim)(features)
