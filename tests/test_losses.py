"""Each loss against a hand computation, and the CLR terms' gradient routing."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from clr_gan_jax import losses, steps
from clr_gan_jax.models import MLPDiscriminator, MLPGenerator

REAL, FAKE = [1.0, -2.0], [0.5, 3.0]


def softplus(v):
    return math.log1p(math.exp(v))


@pytest.mark.parametrize(
    "kind, d_expected, g_expected",
    [
        (
            "vanilla",
            0.5 * ((softplus(-1.0) + softplus(2.0)) / 2 + (softplus(0.5) + softplus(3.0)) / 2),
            (softplus(-0.5) + softplus(-3.0)) / 2,
        ),
        ("hinge", (0.0 + 3.0) / 2 + (1.5 + 4.0) / 2, -(0.5 + 3.0) / 2),
        ("lsgan", 0.5 * ((0.0 + 9.0) / 2 + (0.25 + 9.0) / 2), 0.5 * (0.25 + 4.0) / 2),
    ],
)
def test_adversarial_losses(kind, d_expected, g_expected):
    real, fake = jnp.array(REAL), jnp.array(FAKE)
    assert float(losses.d_adversarial(kind, real, fake)) == pytest.approx(d_expected, rel=1e-6)
    assert float(losses.g_adversarial(kind, fake)) == pytest.approx(g_expected, rel=1e-6)


def test_unknown_losses_are_refused():
    with pytest.raises(ValueError, match="loss.adversarial"):
        losses.d_adversarial("wasserstein", jnp.zeros(1), jnp.zeros(1))
    with pytest.raises(ValueError, match="clr.distance"):
        losses.distance("cosine", jnp.zeros(1), jnp.zeros(1))


def test_r1_penalty_and_distances():
    grads = jnp.array([[[1.0, 2.0]], [[0.0, 3.0]]])  # per-example squared norms 5 and 9
    assert float(losses.r1_penalty(10.0, grads)) == pytest.approx(0.5 * 10.0 * (5 + 9) / 2)
    a, b = jnp.array([1.0, -1.0, 2.0]), jnp.array([0.0, 1.0, 2.0])
    assert float(losses.distance("l1", a, b)) == pytest.approx((1 + 2 + 0) / 3)
    assert float(losses.distance("mse", a, b)) == pytest.approx((1 + 4 + 0) / 3)
    cfg = losses.LossConfig(w_clr=5.0, w_rec=0.5, distance="l1")
    assert float(losses.latent_restoration(cfg, a, b)) == pytest.approx(5.0)
    assert float(losses.reconstruction(cfg, a, b)) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def tiny_gan():
    generator, discriminator = MLPGenerator(out_dim=2, hidden=8, depth=1), MLPDiscriminator(hidden=8, depth=1, phi_dim=4)
    gan = steps.GAN(
        generator, discriminator, optax.adam(1e-3), optax.adam(1e-3),
        losses.LossConfig(r1_gamma=10.0, clr=True, w_clr=5.0, w_rec=0.5, distance="l1"),
        z_dim=4, ema_decay=0.0, n_critic=1, seed=0,
    )
    g_params = generator.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
    d_params = discriminator.init(jax.random.key(1), jnp.zeros((1, 2)))["params"]
    real = jax.random.uniform(jax.random.key(2), (6, 2), minval=-1, maxval=1)
    z = jax.random.normal(jax.random.key(3), (6, 4))
    return gan, g_params, d_params, real, z


def global_norm(tree):
    return float(optax.tree.norm(tree))


def test_latent_restoration_trains_d_only(tiny_gan):
    gan, g_params, d_params, real, z = tiny_gan

    def d_loss(g_params, d_params):
        fake = gan.generator.apply({"params": g_params}, z)
        return steps.d_loss_fn(gan, d_params, {}, real, fake, z)

    grad_g, grad_d = jax.grad(lambda g, d: d_loss(g, d)[1][1]["d_clr"], argnums=(0, 1))(g_params, d_params)
    assert global_norm(grad_g) == 0.0
    assert global_norm(grad_d) > 1e-3
    total_grad_g = jax.grad(lambda g: d_loss(g, d_params)[0])(g_params)
    assert global_norm(total_grad_g) == 0.0  # nothing in D's objective reaches G


def test_reconstruction_trains_g_only(tiny_gan):
    gan, g_params, d_params, real, z = tiny_gan

    def reconstruction(g_params, d_params):
        return steps.g_reconstruction_loss(gan, g_params, {}, {"params": d_params, "batch_stats": {}}, real)[0]

    grad_g, grad_d = jax.grad(reconstruction, argnums=(0, 1))(g_params, d_params)
    assert global_norm(grad_d) == 0.0
    assert global_norm(grad_g) > 1e-3


def test_d_loss_terms_match_direct_computation(tiny_gan):
    """The summed D loss equals its parts computed from scratch, R1 through a separate jax.grad."""
    gan, g_params, d_params, real, z = tiny_gan
    fake = gan.generator.apply({"params": g_params}, z)
    total, (_, terms) = steps.d_loss_fn(gan, d_params, {}, real, fake, z)
    d = lambda x: gan.discriminator.apply({"params": d_params}, x)  # noqa: E731
    (real_logits, _), (fake_logits, fake_phi) = d(real), d(fake)
    input_grads = jax.grad(lambda x: d(x)[0].sum())(real)
    expected = {
        "d_adv": losses.d_adversarial("vanilla", real_logits, fake_logits),
        "d_r1": 5.0 * jnp.mean(jnp.sum(input_grads**2, axis=1)),
        "d_clr": 5.0 * jnp.mean(jnp.abs(z - fake_phi)),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name], value, rtol=1e-5)
    np.testing.assert_allclose(total, sum(expected.values()), rtol=1e-5)
