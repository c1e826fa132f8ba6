"""Architectures: the zoo's exact layers, output dicts with heads, spectral norm state, both conv arithmetics."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from clr_gan_jax.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


def shapes(module, *example):
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *example))
    return {k: v.shape for k, v in traverse_util.flatten_dict(variables, sep="/").items()}


def test_dcgan_at_32px_has_the_zoo_layers():
    """SimpleCNN of the GAN zoo: the PyTorch layer list, parameter for parameter (plus CLR's phi head)."""
    g = shapes(DCGANGenerator(resolution=32, channels=3, width=1024), jnp.zeros((1, 100)))
    convs = [(100, 1024), (1024, 512), (512, 256), (256, 3)]  # ConvTranspose2d(cin, cout, 4)
    kernels = [s for k, s in sorted(g.items()) if k.startswith("params") and k.endswith("kernel")]
    assert sorted(kernels) == sorted((4, 4, cin, cout) for cin, cout in convs)
    bn = [512 + 512, 256 + 256, 1024 + 1024]  # scale + bias per BatchNorm2d
    expected = sum(cin * cout * 16 + cout for cin, cout in convs) + sum(bn)
    assert sum(np.prod(s) for k, s in g.items() if k.startswith("params")) == expected == 12_141_827

    d = shapes(DCGANDiscriminator(resolution=32, width=1024, heads=(("phi", 100),)), jnp.zeros((1, 32, 32, 3)))
    convs = [(3, 256), (256, 512), (512, 1024), (1024, 1), (1024, 100)]  # last: the phi head
    expected = sum(cin * cout * 16 + cout for cin, cout in convs) + 2 * (512 + 1024)
    assert sum(np.prod(s) for k, s in d.items() if k.startswith("params")) == expected
    assert d["params/phi/kernel"] == (4, 4, 1024, 100) and d["params/logit/kernel"] == (4, 4, 1024, 1)
    # checkpoints and the generator_from_npz notebook address the layers by these names
    assert {k.split("/")[1] for k in d} == {"Conv_0", "Conv_1", "Conv_2", "BatchNorm_0", "BatchNorm_1", "logit", "phi"}
    assert {k.split("/")[1] for k in g} == {
        "Project_0",
        "UpConv_0",
        "UpConv_1",
        "UpConv_2",
        "BatchNorm_0",
        "BatchNorm_1",
        "BatchNorm_2",
    }


@pytest.mark.parametrize("resolution", [8, 16, 64])
def test_dcgan_outputs_over_resolutions(resolution):
    g = DCGANGenerator(resolution=resolution, channels=1, width=16)
    d = DCGANDiscriminator(resolution=resolution, width=16, heads=(("phi", 7), ("q", 3)))
    z = jnp.ones((2, 7))
    x = jax.jit(g.apply)(jax.jit(g.init)(jax.random.key(0), z), z)
    assert x.shape == (2, resolution, resolution, 1) and float(jnp.abs(x).max()) <= 1.0
    out = jax.jit(d.apply)(jax.jit(d.init)(jax.random.key(1), x), x)
    assert {k: v.shape for k, v in out.items()} == {
        "logits": (2,),
        "features": (2, 16 * 16),
        "phi": (2, 7),
        "q": (2, 3),
    }


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(resolution=24).init(jax.random.key(0), jnp.zeros((1, 4)))


def test_mlp_outputs_and_init():
    g, d = MLPGenerator(out_dim=2), MLPDiscriminator(heads=(("phi", 32),))
    z = jnp.ones((3, 32))
    x = g.apply(g.init(jax.random.key(0), z), z)
    assert x.shape == (3, 2)
    d_vars = d.init(jax.random.key(1), x)
    out = d.apply(d_vars, x)
    assert {k: v.shape for k, v in out.items()} == {"logits": (3,), "features": (3, 256), "phi": (3, 32)}
    kernel = d_vars["params"]["Dense_1"]["kernel"]  # PyTorch's default Linear init: U(-1/sqrt(fan_in), +)
    assert kernel.shape == (256, 256) and 0.9 / 16 < float(jnp.abs(kernel).max()) <= 1 / 16


def test_spectral_norm_divides_by_the_largest_singular_value_and_updates_its_vectors_only_in_training():
    d = DCGANDiscriminator(resolution=16, width=8, spectral_norm=True)
    x = jax.random.normal(jax.random.key(0), (4, 16, 16, 3))
    variables = jax.jit(d.init)(jax.random.key(1), x)
    assert set(variables) == {"params", "batch_stats", "spectral"}
    train_apply = jax.jit(functools.partial(d.apply, train=True, mutable=["batch_stats", "spectral"]))
    _, updated = train_apply(variables, x)
    for _ in range(30):  # power iteration converges to the largest singular value
        _, updated = train_apply({**variables, **updated}, x)
    kernel = variables["params"]["Conv_1"]["kernel"]
    sigma = np.linalg.svd(np.asarray(kernel).reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
    np.testing.assert_allclose(updated["spectral"]["SpectralNorm_1"]["Conv_1/kernel/sigma"], sigma, rtol=1e-4)
    _, frozen = d.apply(variables, x, train=False, mutable=["spectral"])
    np.testing.assert_array_equal(
        frozen["spectral"]["SpectralNorm_1"]["Conv_1/kernel/u"],
        variables["spectral"]["SpectralNorm_1"]["Conv_1/kernel/u"],
    )


def test_matmul_and_xla_arithmetic_give_the_same_networks_values_and_gradients():
    """conv_impl changes the arithmetic only: same parameter tree, outputs and gradients on CPU."""
    z = jax.random.normal(jax.random.key(0), (4, 8))
    g = {impl: DCGANGenerator(16, 3, 32, conv_impl=impl) for impl in ("matmul", "xla")}
    d = {impl: DCGANDiscriminator(16, 32, heads=(("phi", 8),), conv_impl=impl) for impl in ("matmul", "xla")}
    g_vars = g["matmul"].init(jax.random.key(1), z)
    d_vars = d["matmul"].init(jax.random.key(2), jnp.zeros((1, 16, 16, 3)))
    assert jax.tree.structure(g["xla"].init(jax.random.key(1), z)) == jax.tree.structure(g_vars)

    def loss(impl, g_params, d_params):
        x, _ = g[impl].apply({**g_vars, "params": g_params}, z, train=True, mutable=["batch_stats"])
        out, _ = d[impl].apply({**d_vars, "params": d_params}, x, train=True, mutable=["batch_stats"])
        return out["logits"].sum() + jnp.square(out["phi"] - z).sum()

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(1, 2)), static_argnums=0)
    results = {impl: value_and_grad(impl, g_vars["params"], d_vars["params"]) for impl in g}
    (v_m, grads_m), (v_x, grads_x) = results["matmul"], results["xla"]
    np.testing.assert_allclose(v_m, v_x, rtol=1e-5)
    scale = max(float(np.abs(b).max()) for b in jax.tree.leaves(grads_x))  # biases before BatchNorm: ~0 +- rounding
    for a, b in zip(jax.tree.leaves(grads_m), jax.tree.leaves(grads_x)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * scale)


def test_bfloat16_products_keep_float32_parameters_and_outputs():
    """matmul_dtype=bfloat16 changes the arithmetic only: same parameters, float32 outputs near float32's."""
    z = jax.random.normal(jax.random.key(0), (4, 8))
    g32, d32 = DCGANGenerator(16, 3, 32), DCGANDiscriminator(16, 32, heads=(("phi", 8),))
    g16, d16 = (m.clone(matmul_dtype=jnp.bfloat16) for m in (g32, d32))
    g_vars = g32.init(jax.random.key(1), z)
    assert jax.tree.structure(g16.init(jax.random.key(1), z)) == jax.tree.structure(g_vars)
    exact, low = g32.apply(g_vars, z), g16.apply(g_vars, z)
    assert low.dtype == jnp.float32 and not np.array_equal(low, exact)
    np.testing.assert_allclose(low, exact, atol=0.05)
    d_vars = d32.init(jax.random.key(2), exact)
    for name, e in d32.apply(d_vars, exact).items():
        lo = d16.apply(d_vars, exact)[name]
        assert lo.dtype == jnp.float32
        np.testing.assert_allclose(lo, e, atol=0.05 * float(jnp.abs(e).max()) + 1e-3, err_msg=name)
