"""The GAN zoo's SimpleMLP for 2-D data (Ring8, Grid25).

G: Linear(z->256), [LReLU(0.2), Linear(256->256)] x2, LReLU, Linear(256->2), tanh.
D: Linear(2->256), [LReLU, Linear(256->256)] x2, LReLU, Linear(256->1); every head (e.g.
CLR's phi) is a linear layer beside the logit on the same penultimate features. Weights use
PyTorch's default Linear init (uniform with bound 1/sqrt(fan_in)); biases start at zero.
With ``spectral_norm`` every D layer but the heads is spectrally normalised.
"""

import flax.linen as nn
import jax.numpy as jnp

torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
SPECTRAL_COLLECTION = "spectral"


def _dense(features: int, name: str | None = None) -> nn.Dense:
    return nn.Dense(features, kernel_init=torch_linear_init, name=name)


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> points (N, out_dim) in [-1, 1]."""

    out_dim: int = 2
    hidden: int = 256
    depth: int = 2

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = False):
        del labels, train  # unconditional, no normalisation layers
        x = _dense(self.hidden)(z)
        for _ in range(self.depth):
            x = _dense(self.hidden)(nn.leaky_relu(x, 0.2))
        return jnp.tanh(_dense(self.out_dim)(nn.leaky_relu(x, 0.2)))


class MLPDiscriminator(nn.Module):
    """points (N, in_dim) -> {'logits': (N,), 'features': (N, hidden), head: (N, width) for each head}.

    ``num_outputs`` > 1 makes the logits (N, num_outputs) (RealnessGAN's distribution over outcomes).
    """

    hidden: int = 256
    depth: int = 2
    heads: tuple[tuple[str, int], ...] = ()
    spectral_norm: bool = False
    num_outputs: int = 1

    def _layer(self, features: int, train: bool, name: str | None = None):
        dense = _dense(features, name)
        if not self.spectral_norm:
            return dense
        wrapped = nn.SpectralNorm(dense, collection_name=SPECTRAL_COLLECTION)
        return lambda x: wrapped(x, update_stats=train)

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = False):
        del labels  # unconditional
        x = self._layer(self.hidden, train)(x)
        for _ in range(self.depth):
            x = self._layer(self.hidden, train)(nn.leaky_relu(x, 0.2))
        x = nn.leaky_relu(x, 0.2)
        logits = self._layer(self.num_outputs, train, name="logit")(x)
        outputs = {"logits": logits[:, 0] if self.num_outputs == 1 else logits, "features": x}
        for name, width in self.heads:
            outputs[name] = _dense(width, name)(x)
        return outputs
