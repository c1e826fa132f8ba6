"""Convolution layers with PyTorch's DCGAN parameterisation, computed in forms that are fast on XLA.

Kernels are stored as (kh, kw, in, out) with the meaning of PyTorch's weights
(``ConvTranspose2d.weight[in, out, kh, kw]`` or ``Conv2d.weight[out, in, kh, kw]``
transposed to that layout), so checkpoints map one-to-one onto the reference
architecture. Only the arithmetic differs: XLA:CPU computes the gradients of a
transposed convolution about 10x slower than a stride-1 convolution,
so the 4x4 stride-2 transposed convolution is rewritten exactly as a 3x3 stride-1
convolution producing the four output phases, plus a pixel shuffle. It does 9/4 the
multiplications of the transposed form, but runs ~6x faster fwd+bwd on 2 CPU cores
(a 2x2 form without the zero taps ran slower still than the transposed form there).
The strided forward convolution has no such problem.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

dcgan_init = nn.initializers.normal(stddev=0.02)

def conv2d(x: jnp.ndarray, kernel: jnp.ndarray, padding) -> jnp.ndarray:
    """Stride-1 NHWC convolution with an HWIO kernel."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


# Output row 2m+a of a k4 s2 p1 transposed convolution reads input rows m-1, m, m+1
# through kernel taps a+1-2*(j-1), j = 0, 1, 2; taps outside 0..3 are zero. The table
# holds those taps shifted by one, to index a kernel zero-padded by one.
_UPSAMPLE_TAPS = np.array([[a + 1 - 2 * (j - 1) + 1 for j in range(3)] for a in range(2)])


def subpixel_upsample_kernel(kernel: jnp.ndarray) -> jnp.ndarray:
    """Rearranges a (4, 4, I, O) transposed-conv kernel into the (3, 3, I, 4*O) kernel of its sub-pixel form.

    Output channels are ordered (row phase, column phase, O).
    """
    _, _, cin, cout = kernel.shape
    padded = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
    taps = padded[_UPSAMPLE_TAPS[:, None, :, None], _UPSAMPLE_TAPS[None, :, None, :]]  # (a, b, jh, jw, I, O)
    return taps.transpose(2, 3, 4, 0, 1, 5).reshape(3, 3, cin, 4 * cout)


class UpConv(nn.Module):
    """PyTorch ``ConvTranspose2d(k=4, s=2, p=1)``: doubles H and W."""

    features: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", dcgan_init, (4, 4, x.shape[-1], self.features))
        n, h, w, _ = x.shape
        y = conv2d(x, subpixel_upsample_kernel(kernel), padding=((1, 1), (1, 1)))
        y = y.reshape(n, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)  # (N, H, a, W, b, O)
        y = y.reshape(n, 2 * h, 2 * w, self.features)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def down_conv(features: int) -> nn.Conv:
    """PyTorch ``Conv2d(k=4, s=2, p=1)`` with DCGAN init: halves H and W (XLA's strided convolution is fast)."""
    return nn.Conv(features, (4, 4), strides=2, padding=1, kernel_init=dcgan_init)


class Project(nn.Module):
    """PyTorch ``ConvTranspose2d(k=4, s=1, p=0)`` on a 1x1 input: a vector to a 4x4 feature map."""

    features: int

    @nn.compact
    def __call__(self, z):
        kernel = self.param("kernel", dcgan_init, (4, 4, z.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return jnp.einsum("ni,hwio->nhwo", z, kernel) + bias


class Reduce(nn.Module):
    """PyTorch ``Conv2d(k=4, s=1, p=0)`` on a 4x4 input: a 4x4 feature map to a vector."""

    features: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", dcgan_init, (4, 4, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return jnp.einsum("nhwi,hwio->no", x, kernel) + bias
