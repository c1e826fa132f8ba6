"""The DCGAN layers compute exactly PyTorch's convolutions with the same weights, in both arithmetic forms
(matrix products for XLA:CPU, XLA's convolutions for GPU/TPU), values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clr_gan_jax.models import layers


def transposed_conv_by_definition(x, kernel, stride, padding):
    """PyTorch ConvTranspose2d, written out: input pixel i scatters kernel tap k to output i*stride - padding + k."""
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    out_h, out_w = (h - 1) * stride - 2 * padding + kh, (w - 1) * stride - 2 * padding + kw
    y = np.zeros((n, out_h, out_w, cout), np.float64)
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    oi, oj = i * stride - padding + a, j * stride - padding + b
                    if 0 <= oi < out_h and 0 <= oj < out_w:
                        y[:, oi, oj] += x[:, i, j] @ kernel[a, b]
    return y


def conv_by_definition(x, kernel, stride, padding):
    """PyTorch Conv2d (cross-correlation), written out."""
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    kh, kw, _, cout = kernel.shape
    out_h, out_w = (xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], out_h, out_w, cout), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
            y[:, i, j] = np.einsum("nhwi,hwio->no", patch, kernel)
    return y


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("impl", ["matmul", "xla"])
def test_upconv_is_pytorch_transposed_conv_k4_s2_p1(rng, impl):
    x = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((4, 4, 3, 4)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    y = layers.UpConv(4, conv_impl=impl).apply({"params": {"kernel": kernel, "bias": bias}}, x)
    assert y.shape == (2, 10, 12, 4)
    np.testing.assert_allclose(y, transposed_conv_by_definition(x, kernel, 2, 1) + bias, atol=1e-4)


@pytest.mark.parametrize(
    "matmul_form, xla_form, shape",
    [
        (layers.conv_k4s2p1, layers.xla_conv_k4s2p1, (2, 8, 6, 3)),
        (layers.transposed_conv_k4s2p1, layers.xla_transposed_conv_k4s2p1, (2, 3, 5, 3)),
        (
            layers.transposed_conv_k4s2p1,
            layers.xla_transposed_conv_k4s2p1,
            (1, 1, 1, 3),
        ),  # all taps but one land outside
    ],
)
def test_matmul_forms_equal_xla_convolutions_in_values_and_gradients(rng, matmul_form, xla_form, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = rng.standard_normal((4, 4, 3, 4)).astype(np.float32)
    expected = xla_form(x, kernel)
    np.testing.assert_allclose(matmul_form(x, kernel), expected, rtol=1e-5, atol=1e-5)
    target = rng.standard_normal(expected.shape).astype(np.float32)
    grads = [
        jax.grad(lambda x, k, f=f: jnp.sum((f(x, k) - target) ** 2), argnums=(0, 1))(x, kernel)
        for f in (xla_form, matmul_form)
    ]
    for ref, got in zip(*grads):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_auto_picks_the_matmul_forms_on_cpu_and_refuses_unknown_names():
    assert jax.default_backend() == "cpu" and layers.resolve_conv_impl("auto") == "matmul"
    assert layers.resolve_conv_impl("xla") == "xla"
    with pytest.raises(ValueError, match="conv_impl must be one of"):
        layers.resolve_conv_impl("cudnn")


@pytest.mark.parametrize("impl", ["matmul", "xla"])
def test_down_conv_project_and_reduce_match_pytorch_convs(rng, impl):
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    kernel = rng.standard_normal((4, 4, 3, 5)).astype(np.float32)
    bias = np.zeros(5, np.float32)
    down = layers.DownConv(5, conv_impl=impl).apply({"params": {"kernel": kernel, "bias": bias}}, x)
    np.testing.assert_allclose(down, conv_by_definition(x, kernel, 2, 1), atol=1e-4)

    z = rng.standard_normal((2, 3)).astype(np.float32)
    projected = layers.Project(5).apply({"params": {"kernel": kernel, "bias": bias}}, z)
    np.testing.assert_allclose(projected, transposed_conv_by_definition(z[:, None, None], kernel, 1, 0), atol=1e-4)

    x4 = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    reduced = layers.Reduce(5).apply({"params": {"kernel": kernel, "bias": bias}}, x4)
    np.testing.assert_allclose(reduced, conv_by_definition(x4, kernel, 1, 0)[:, 0, 0], atol=1e-4)


def test_bfloat16_matmul_runs_forward_and_input_gradient_in_bfloat16(rng):
    """bf16 x bf16 -> f32 for the product and the input gradient, f32 for the weight gradient; close to float32."""
    x = rng.standard_normal((6, 32)).astype(np.float32)
    kernel = rng.standard_normal((32, 8)).astype(np.float32)
    target = rng.standard_normal((6, 8)).astype(np.float32)

    def loss(x, k, dtype):
        return ((layers.matmul(x, k, dtype) - target) ** 2).sum()

    grad_fn = jax.grad(loss, argnums=(0, 1))
    exact, low = grad_fn(x, kernel, jnp.float32), grad_fn(x, kernel, jnp.bfloat16)
    for e, lo in zip(exact, low):
        assert lo.dtype == np.float32
        np.testing.assert_allclose(lo, e, rtol=0.05, atol=0.05 * float(np.abs(e).max()))
    assert not np.array_equal(low[0], exact[0])  # the input gradient did go through bfloat16
    hlo = jax.jit(grad_fn, static_argnums=2).lower(x, kernel, jnp.bfloat16).as_text()
    products = [line for line in hlo.splitlines() if "dot_general" in line and "=" in line]
    operand_types = sorted(line.split(":")[-1].split("->")[0].strip() for line in products)
    assert operand_types == sorted(
        [
            "(tensor<6x32xbf16>, tensor<32x8xbf16>)",
            "(tensor<6x8xbf16>, tensor<32x8xbf16>)",
            "(tensor<6x32xf32>, tensor<6x8xf32>)",
        ]
    ), products
