"""The GAN zoo's SimpleMLP for 2-D data (Ring8, Grid25).

G: Linear(z->256), [LReLU(0.2), Linear(256->256)] x2, LReLU, Linear(256->2), tanh.
D: Linear(2->256), [LReLU, Linear(256->256)] x2, LReLU, Linear(256->1); phi is a
linear head beside the logit on the same penultimate features. Weights use PyTorch's
default Linear init (uniform with bound 1/sqrt(fan_in)); biases start at zero.
"""

import flax.linen as nn
import jax.numpy as jnp

torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _trunk(x, hidden: int, depth: int):
    x = nn.Dense(hidden, kernel_init=torch_linear_init)(x)
    for _ in range(depth):
        x = nn.Dense(hidden, kernel_init=torch_linear_init)(nn.leaky_relu(x, 0.2))
    return nn.leaky_relu(x, 0.2)


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> points (N, out_dim) in [-1, 1]."""

    out_dim: int = 2
    hidden: int = 256
    depth: int = 2

    @nn.compact
    def __call__(self, z, train: bool = True):
        del train  # no normalisation layers; the argument keeps one calling convention for all models
        h = _trunk(z, self.hidden, self.depth)
        return jnp.tanh(nn.Dense(self.out_dim, kernel_init=torch_linear_init)(h))


class MLPDiscriminator(nn.Module):
    """points (N, in_dim) -> (logits (N,), phi (N, phi_dim))."""

    hidden: int = 256
    depth: int = 2
    phi_dim: int = 32

    @nn.compact
    def __call__(self, x, train: bool = True):
        del train
        h = _trunk(x, self.hidden, self.depth)
        logits = nn.Dense(1, kernel_init=torch_linear_init, name="logit")(h)[:, 0]
        phi = nn.Dense(self.phi_dim, kernel_init=torch_linear_init, name="phi")(h)
        return logits, phi
