"""Architectures: output shapes over resolutions, (logits, phi) from every D, and the zoo's exact layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from clr_gan_jax.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


def shapes(module, example):
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), example, train=False))
    return {k: v.shape for k, v in traverse_util.flatten_dict(variables, sep="/").items()}


def test_dcgan_at_32px_has_the_zoo_layers():
    """SimpleCNN of the GAN zoo: the PyTorch layer list, parameter for parameter."""
    g = shapes(DCGANGenerator(resolution=32, channels=3, width=1024), jnp.zeros((1, 100)))
    convs = [(100, 1024), (1024, 512), (512, 256), (256, 3)]  # ConvTranspose2d(cin, cout, 4)
    kernels = [s for k, s in sorted(g.items()) if k.startswith("params") and k.endswith("kernel")]
    assert sorted(kernels) == sorted((4, 4, cin, cout) for cin, cout in convs)
    bn = [512 + 512, 256 + 256, 1024 + 1024]  # scale + bias per BatchNorm2d
    expected = sum(cin * cout * 16 + cout for cin, cout in convs) + sum(bn)
    assert sum(np.prod(s) for k, s in g.items() if k.startswith("params")) == expected == 12_141_827

    d = shapes(DCGANDiscriminator(resolution=32, width=1024, phi_dim=100), jnp.zeros((1, 32, 32, 3)))
    convs = [(3, 256), (256, 512), (512, 1024), (1024, 1), (1024, 100)]  # last: the phi head
    expected = sum(cin * cout * 16 + cout for cin, cout in convs) + 2 * (512 + 1024)
    assert sum(np.prod(s) for k, s in d.items() if k.startswith("params")) == expected
    assert d["params/phi/kernel"] == (4, 4, 1024, 100) and d["params/logit/kernel"] == (4, 4, 1024, 1)


@pytest.mark.parametrize("resolution", [8, 16, 64])
def test_dcgan_shapes_over_resolutions(resolution):
    g, d = DCGANGenerator(resolution=resolution, channels=1, width=16), DCGANDiscriminator(resolution=resolution, width=16, phi_dim=7)
    z = jnp.ones((2, 7))
    g_vars = g.init(jax.random.key(0), z, train=False)
    x = g.apply(g_vars, z, train=False)
    assert x.shape == (2, resolution, resolution, 1) and float(jnp.abs(x).max()) <= 1.0
    logits, phi = d.apply(d.init(jax.random.key(1), x, train=False), x, train=False)
    assert logits.shape == (2,) and phi.shape == (2, 7)


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        DCGANGenerator(resolution=24).init(jax.random.key(0), jnp.zeros((1, 4)), train=False)


def test_mlp_shapes_and_init():
    g, d = MLPGenerator(out_dim=2), MLPDiscriminator(phi_dim=32)
    z = jnp.ones((3, 32))
    g_vars = g.init(jax.random.key(0), z)
    x = g.apply(g_vars, z)
    assert x.shape == (3, 2)
    d_vars = d.init(jax.random.key(1), x)
    logits, phi = d.apply(d_vars, x)
    assert logits.shape == (3,) and phi.shape == (3, 32)
    kernel = d_vars["params"]["Dense_1"]["kernel"]  # PyTorch's default Linear init: U(-1/sqrt(fan_in), +)
    assert kernel.shape == (256, 256) and float(jnp.abs(kernel).max()) <= 1 / 16 and float(jnp.abs(kernel).max()) > 0.9 / 16


def test_bfloat16_products_keep_float32_parameters_and_outputs():
    """matmul_dtype=bfloat16 changes the arithmetic only: same parameters, float32 outputs near float32's."""
    z = jax.random.normal(jax.random.key(0), (4, 8))
    g32, d32 = DCGANGenerator(16, 3, 32), DCGANDiscriminator(16, 32, 8)
    g16, d16 = (m.clone(matmul_dtype=jnp.bfloat16) for m in (g32, d32))
    g_vars = g32.init(jax.random.key(1), z, train=False)
    assert jax.tree.structure(g16.init(jax.random.key(1), z, train=False)) == jax.tree.structure(g_vars)
    exact, low = g32.apply(g_vars, z, train=False), g16.apply(g_vars, z, train=False)
    assert low.dtype == jnp.float32 and not np.array_equal(low, exact)
    np.testing.assert_allclose(low, exact, atol=0.05)
    d_vars = d32.init(jax.random.key(2), exact, train=False)
    for e, l in zip(d32.apply(d_vars, exact, train=False), d16.apply(d_vars, exact, train=False)):
        assert l.dtype == jnp.float32
        np.testing.assert_allclose(l, e, atol=0.05 * float(jnp.abs(e).max()) + 1e-3)
