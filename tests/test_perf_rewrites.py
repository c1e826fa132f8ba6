"""The matrix-product forms of the DCGAN convolutions equal XLA's convolutions, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clr_gan_jax.models import DCGANDiscriminator, layers


def xla_conv_k4s2p1(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def xla_transposed_conv_k4s2p1(x, kernel):
    return jax.lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize(
    "ours, reference, shape",
    [
        (layers.conv_k4s2p1, xla_conv_k4s2p1, (2, 8, 6, 3)),
        (layers.transposed_conv_k4s2p1, xla_transposed_conv_k4s2p1, (2, 3, 5, 3)),
        (layers.transposed_conv_k4s2p1, xla_transposed_conv_k4s2p1, (1, 1, 1, 3)),  # every tap lands outside but one
    ],
)
def test_matmul_forms_match_xla_convolutions(ours, reference, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = rng.standard_normal((4, 4, 3, 4)).astype(np.float32)
    expected = reference(x, kernel)
    np.testing.assert_allclose(ours(x, kernel), expected, rtol=1e-5, atol=1e-5)

    target = rng.standard_normal(expected.shape).astype(np.float32)
    grads = [jax.grad(lambda x, k, f=f: jnp.sum((f(x, k) - target) ** 2), argnums=(0, 1))(x, kernel) for f in (reference, ours)]
    for ref, got in zip(*grads):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_discriminator_keeps_the_parameter_names_of_nn_conv():
    """Checkpoints written when D used flax's nn.Conv (Conv_0, Conv_1, ...) must still load."""
    variables = jax.eval_shape(lambda: DCGANDiscriminator(resolution=16, width=8, phi_dim=4).init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), train=False))
    assert set(variables["params"]) == {"Conv_0", "Conv_1", "BatchNorm_0", "logit", "phi"}
    assert set(variables["params"]["Conv_1"]) == {"kernel", "bias"}
