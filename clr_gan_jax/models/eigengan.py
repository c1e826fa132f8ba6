"""EigenGAN (He et al., ICCV 2021) as the GAN zoo builds it: a generator whose every layer adds a learned subspace.

G: z = [layer coordinates (stages x basis), noise]. The noise goes through a dense layer to a 4x4 map
of ``noise`` channels; each upsampling block i then takes its coordinates z_i (basis,) to
``h = U_i^T (L_i * z_i) + mu_i``, the point of an affine subspace of its input map's size (U_i: basis x
(H W C) with orthonormal rows at init and under the orthogonality penalty, L_i: importance, init 1;
mu_i: origin, init 0), and computes
    x = block1(x + conv1x1(h)),   x = block2(x + upconv3x3(h))
with block1 = LReLU(0.2), ConvT(3x3, stride 2) and block2 = LReLU(0.2), ConvT(3x3, stride 1) (the
transposed convolutions as flax's 'SAME' ones, which differ from PyTorch's only by a flip of the
kernel and the placement of the output padding), then LReLU, Conv(7x7) to the image and tanh. Block i
outputs ``width / 2**i`` channels. No BatchNorm (the zoo's with_bn: false).
D (the zoo's): Conv(7x7), per stage [LReLU, Conv(3x3), LReLU, Conv(3x3, stride 2)], then LReLU,
Conv(3x3), LReLU, flatten, Dense(width), LReLU -> 'features'; the logit and every head are dense
read-outs of those features. Stage i outputs ``width / 2**max(0, stages - 2 - i)`` channels (the
zoo's 32, 64, ..., 512, 512 for width 512 at 256 px), its first convolution half of stage 0's.
Weights N(0, 0.02), biases 0, as the zoo's init.

The orthogonality penalty is ``ortho * sum_i mean((U_i U_i^T - I)^2)`` (G's loss, ``g_ortho``).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from clr_gan_jax.latents import Row
from clr_gan_jax.models.dcgan import num_stages
from clr_gan_jax.models.layers import dcgan_init


def orthogonality(basis: jax.Array) -> jax.Array:
    """mean((U U^T - I)^2) of a (basis, dim) matrix: 0 for orthonormal rows."""
    return jnp.square(basis @ basis.T - jnp.eye(basis.shape[0])).mean()


def orthogonality_penalty(g_params: dict, weight: float) -> dict[str, jax.Array]:
    """G's loss term: ``weight`` times the sum of every layer's `orthogonality`."""
    bases = [g_params[name]["subspace"]["U"] for name in sorted(g_params) if name.startswith("block_")]
    return {"g_ortho": weight * sum(orthogonality(u) for u in bases)}


class Subspace(nn.Module):
    """(N, basis) coordinates -> (N, dim) points (z * L) U + mu of the layer's subspace."""

    basis: int
    dim: int

    @nn.compact
    def __call__(self, z):
        u = self.param("U", nn.initializers.orthogonal(), (self.basis, self.dim))
        importance = self.param("L", nn.initializers.ones, (self.basis,))
        origin = self.param("mu", nn.initializers.zeros, (self.dim,))
        return (z * importance) @ u + origin


def _conv(features: int, size: int, name: str | None = None) -> nn.Conv:
    return nn.Conv(features, (size, size), padding="SAME", kernel_init=dcgan_init, name=name)


class EigenBlock(nn.Module):
    features: int
    basis: int

    @nn.compact
    def __call__(self, x, z):
        h = Subspace(self.basis, x[0].size, name="subspace")(z).reshape(x.shape)
        up = dict(strides=(2, 2), padding="SAME", kernel_init=dcgan_init)
        x = x + _conv(x.shape[-1], 1)(h)
        x = nn.ConvTranspose(self.features, (3, 3), **up)(nn.leaky_relu(x, 0.2))
        x = x + nn.ConvTranspose(self.features, (3, 3), **up)(h)
        return nn.ConvTranspose(self.features, (3, 3), padding="SAME", kernel_init=dcgan_init)(nn.leaky_relu(x, 0.2))


class EigenGANGenerator(nn.Module):
    """z (N, stages * basis + noise) -> images (N, R, R, channels) in [-1, 1]; ``labels`` must be None."""

    resolution: int = 32
    channels: int = 3
    width: int = 512
    basis: int = 6

    @property
    def stages(self) -> int:
        return num_stages(self.resolution)

    @nn.compact
    def __call__(self, z, labels=None, *, train: bool = False):
        del labels, train  # unconditional, no BatchNorm
        n, coordinates = z.shape[0], self.stages * self.basis
        layer_z = z[:, :coordinates].reshape(n, self.stages, self.basis)
        noise = z[:, coordinates:]
        x = nn.Dense(16 * noise.shape[-1], kernel_init=dcgan_init)(noise).reshape(n, 4, 4, noise.shape[-1])
        for i in range(self.stages):
            x = EigenBlock(self.width // 2**i, self.basis, name=f"block_{i}")(x, layer_z[:, i])
        return jnp.tanh(_conv(self.channels, 7)(nn.leaky_relu(x, 0.2)))

    def traversal(self, columns: int, sweep: jax.Array) -> list[Row]:
        """One row per (layer, dimension), top layer (4x4) first: that coordinate swept over ``sweep`` (the
        columns) on one base latent."""
        base = jnp.zeros((len(sweep),), jnp.int32)
        return [Row("z", index, sweep[:, None], base) for index in range(self.stages * self.basis)]


class EigenGANDiscriminator(nn.Module):
    """images (N, R, R, C) -> {'logits': (N,), 'features': (N, width), head: (N, head width) for each head}."""

    resolution: int = 32
    width: int = 512
    heads: tuple[tuple[str, int], ...] = ()

    @nn.compact
    def __call__(self, x, labels=None, *, train: bool = False):
        del labels, train
        stages = num_stages(self.resolution)
        x = _conv(self.width // 2 ** (stages - 1), 7)(x)
        for i in range(stages):
            x = _conv(x.shape[-1], 3)(nn.leaky_relu(x, 0.2))
            features = self.width // 2 ** max(0, stages - 2 - i)
            down = nn.Conv(features, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), kernel_init=dcgan_init)
            x = down(nn.leaky_relu(x, 0.2))
        x = nn.leaky_relu(_conv(x.shape[-1], 3)(nn.leaky_relu(x, 0.2)), 0.2)
        features = nn.leaky_relu(nn.Dense(self.width, kernel_init=dcgan_init)(x.reshape(x.shape[0], -1)), 0.2)
        outputs = {"logits": nn.Dense(1, kernel_init=dcgan_init, name="logit")(features)[:, 0], "features": features}
        for name, width in self.heads:
            outputs[name] = nn.Dense(width, kernel_init=dcgan_init, name=name)(features)
        return outputs
