"""Convolution layers with PyTorch's DCGAN parameterisation, computed as matrix products on XLA:CPU.

Kernels are stored as (kh, kw, in, out) with the meaning of PyTorch's weights
(``ConvTranspose2d.weight[in, out, kh, kw]`` or ``Conv2d.weight[out, in, kh, kw]``
transposed to that layout), so checkpoints map one-to-one onto the reference
architecture. Only the arithmetic differs: XLA:CPU sends matrix products to a fast
library but computes convolutions, and above all the gradients of transposed ones,
with slower kernels. Both 4x4 stride-2 convolutions are therefore written as one
matrix product plus data movement, with exactly the multiplications of the convolution:
- transposed (G): every input pixel times all 16 kernel taps, then an overlap-add of
  the taps into the output;
- strided (D): the 16 strided views of the input (im2col) times the kernel.
Their gradients are matrix products too. Measured fwd+bwd on 2 shared CPU cores at
batch 64: ConvT 1024->512 at 4->8 px 0.69 s, against 2.2 s for the earlier 3x3 sub-pixel
convolution (9/4 the multiplications) and 12.7 s for XLA's transposed convolution;
Conv 256->512 at 16->8 px 0.49 s against 0.96 s for XLA's convolution.

``matmul_dtype`` is the operand dtype of a layer's matrix product (see `matmul`);
parameters, activations and everything outside the products stay float32.

``conv_impl`` picks the arithmetic of the two strided convolutions: ``"matmul"`` (the forms
above), ``"xla"`` (XLA's own convolutions, fast on GPU and TPU) or ``"auto"`` (the default:
matmul on CPU, xla elsewhere, decided when the layer is traced). Both compute the same
function with the same parameters, so it is never part of a config or a checkpoint.
"""

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def dcgan_init(key, shape, dtype=jnp.float32):
    """N(0, 0.02) weights, drawn flat and reshaped: XLA:CPU compiles a normal draw of rank 4 seconds slower."""
    return 0.02 * jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def _product(a, b, contract: tuple[int, int], dtype):
    """a and b, cast to ``dtype``, contracted over one axis each and accumulated into float32."""
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return jax.lax.dot_general(a.astype(dtype), b.astype(dtype), dims, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _low_precision_matmul(x, kernel, dtype):
    return _product(x, kernel, (1, 0), dtype)


def _low_precision_matmul_fwd(x, kernel, dtype):
    return _low_precision_matmul(x, kernel, dtype), (x, kernel)


def _low_precision_matmul_bwd(dtype, residuals, cotangent):
    x, kernel = residuals
    return _product(cotangent, kernel, (1, 1), dtype), _product(x, cotangent, (0, 0), jnp.float32)


_low_precision_matmul.defvjp(_low_precision_matmul_fwd, _low_precision_matmul_bwd)


def matmul(x: jnp.ndarray, kernel: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
    """float32 (M, K) @ (K, N) -> float32, with the operands of the product cast to ``dtype``.

    With bfloat16, the product and the input gradient are bfloat16 x bfloat16 -> float32
    products, which XLA:CPU runs natively (about 1.6x float32's rate with avx512_bf16).
    The weight gradient x^T @ cotangent stays float32: XLA:CPU has no native bfloat16
    kernel for a contraction over the rows of both operands and would convert it to a
    float32 product anyway, after two extra conversions. A plain ``jnp.dot`` on bfloat16
    operands is no faster than float32 here, as its bfloat16 output is computed in float32.
    """
    if dtype == jnp.float32:
        return jnp.dot(x, kernel)
    return _low_precision_matmul(x, kernel, dtype)


def _overlap_add(taps: jnp.ndarray) -> jnp.ndarray:
    """(N, L, 4, ...) contributions of L input positions through the 4 kernel taps of one axis
    -> (N, 2L, ...) outputs of a k4 s2 p1 transposed convolution along that axis.

    Input position i, tap k lands on output 2i - 1 + k, so output 2m sums taps 1 of m and 3
    of m-1; output 2m+1 sums taps 2 of m and 0 of m+1 (positions outside 0..L-1 add zero).
    """
    n, length = taps.shape[:2]
    rest = [(0, 0)] * (taps.ndim - 3)
    even = taps[:, :, 1] + jnp.pad(taps[:, :-1, 3], [(0, 0), (1, 0), *rest])
    odd = taps[:, :, 2] + jnp.pad(taps[:, 1:, 0], [(0, 0), (0, 1), *rest])
    return jnp.stack([even, odd], axis=2).reshape(n, 2 * length, *taps.shape[3:])


def transposed_conv_k4s2p1(x: jnp.ndarray, kernel: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
    """PyTorch ``conv_transpose2d(x, weight, stride=2, padding=1)`` for NHWC ``x``, (4, 4, I, O) ``kernel``."""
    n, h, w, cin = x.shape
    cout = kernel.shape[-1]
    taps = matmul(x.reshape(n * h * w, cin), kernel.transpose(2, 0, 1, 3).reshape(cin, 16 * cout), dtype)
    taps = taps.reshape(n, h, w, 4, 4, cout).transpose(0, 1, 3, 2, 4, 5)  # (N, H, kh, W, kw, O)
    rows = _overlap_add(taps)  # (N, 2H, W, kw, O)
    return _overlap_add(rows.reshape(n * 2 * h, w, 4, cout)).reshape(n, 2 * h, 2 * w, cout)


CONV_IMPLS = ("auto", "matmul", "xla")
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def resolve_conv_impl(impl: str) -> str:
    """'auto' -> 'matmul' on CPU (XLA:CPU's convolution kernels are slow), 'xla' on GPU and TPU."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "xla"
    return impl


def _xla_conv(x, kernel, dtype, **kwargs):
    return jax.lax.conv_general_dilated(
        x.astype(dtype),
        kernel.astype(dtype),
        dimension_numbers=_DIMENSIONS,
        preferred_element_type=jnp.float32,
        **kwargs,
    )


def xla_transposed_conv_k4s2p1(x: jnp.ndarray, kernel: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
    """`transposed_conv_k4s2p1` as XLA's convolution: a 2x input dilation, padding k-1-p = 2, the kernel flipped."""
    return _xla_conv(x, kernel[::-1, ::-1], dtype, window_strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(2, 2))


def xla_conv_k4s2p1(x: jnp.ndarray, kernel: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
    """`conv_k4s2p1` as XLA's convolution."""
    return _xla_conv(x, kernel, dtype, window_strides=(2, 2), padding=((1, 1), (1, 1)))


class UpConv(nn.Module):
    """PyTorch ``ConvTranspose2d(k=4, s=2, p=1)``: doubles H and W."""

    features: int
    use_bias: bool = True
    matmul_dtype: Any = jnp.float32
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", dcgan_init, (4, 4, x.shape[-1], self.features))
        conv = transposed_conv_k4s2p1 if resolve_conv_impl(self.conv_impl) == "matmul" else xla_transposed_conv_k4s2p1
        y = conv(x, kernel, self.matmul_dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def conv_k4s2p1(x: jnp.ndarray, kernel: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
    """PyTorch ``conv2d(x, weight, stride=2, padding=1)`` for NHWC ``x``, (4, 4, I, O) ``kernel``.

    The 16 strided views of the padded input (im2col) times the kernel, one matrix product.
    """
    n, h, w, cin = x.shape
    ho, wo = h // 2, w // 2
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.stack([padded[:, a : a + 2 * ho : 2, b : b + 2 * wo : 2] for a in range(4) for b in range(4)], axis=3)
    out = matmul(patches.reshape(n * ho * wo, 16 * cin), kernel.reshape(16 * cin, -1), dtype)
    return out.reshape(n, ho, wo, -1)


class DownConv(nn.Module):
    """PyTorch ``Conv2d(k=4, s=2, p=1)`` with DCGAN init: halves H and W."""

    features: int
    matmul_dtype: Any = jnp.float32
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", dcgan_init, (4, 4, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        conv = conv_k4s2p1 if resolve_conv_impl(self.conv_impl) == "matmul" else xla_conv_k4s2p1
        return conv(x, kernel, self.matmul_dtype) + bias


class Project(nn.Module):
    """PyTorch ``ConvTranspose2d(k=4, s=1, p=0)`` on a 1x1 input: a vector to a 4x4 feature map."""

    features: int
    matmul_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z):
        kernel = self.param("kernel", dcgan_init, (4, 4, z.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        h, w, i, o = kernel.shape
        out = matmul(z, kernel.transpose(2, 0, 1, 3).reshape(i, h * w * o), self.matmul_dtype)
        return out.reshape(-1, h, w, o) + bias


class Reduce(nn.Module):
    """PyTorch ``Conv2d(k=4, s=1, p=0)`` on a 4x4 input: a 4x4 feature map to a vector."""

    features: int
    matmul_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", dcgan_init, (4, 4, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return matmul(x.reshape(x.shape[0], -1), kernel.reshape(-1, self.features), self.matmul_dtype) + bias
