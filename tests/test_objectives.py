"""Adversarial losses and penalties against hand computations; CLR's gradient routing in the gan method's losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import ring8_config

from clr_gan_jax import build, sharding
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.objectives import ADVERSARIAL, penalties
from clr_gan_jax.objectives.clr import DISTANCES

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
        ("wgan", (0.5 + 3.0) / 2 - (1.0 - 2.0) / 2, -(0.5 + 3.0) / 2),
    ],
)
def test_adversarial_losses(kind, d_expected, g_expected):
    loss = ADVERSARIAL.get(kind)(None)  # these four read no config
    real, fake = jnp.array(REAL), jnp.array(FAKE)
    assert float(loss.d(real, fake)) == pytest.approx(d_expected, rel=1e-6)
    assert float(loss.g(fake)) == pytest.approx(g_expected, rel=1e-6)


def test_unknown_names_are_one_line_errors_listing_the_known_ones():
    with pytest.raises(
        UserError, match=r"^loss.adversarial: unknown name 'wasserstein'; known: vanilla, hinge, lsgan, wgan, realness$"
    ):
        ADVERSARIAL.get("wasserstein")
    with pytest.raises(UserError, match=r"^clr.distance: unknown name 'cosine'; known: mse, l1$"):
        DISTANCES.get("cosine")


def test_penalties_and_distances():
    grads = jnp.array([[[1.0, 2.0]], [[0.0, 3.0]]])  # per-example squared norms 5 and 9
    assert float(penalties.r1(grads, 10.0)) == pytest.approx(0.5 * 10.0 * (5 + 9) / 2)
    expected_gp = 10.0 * ((math.sqrt(5) - 1) ** 2 + (3 - 1) ** 2) / 2
    assert float(penalties.gradient_penalty(grads, 10.0)) == pytest.approx(expected_gp, rel=1e-6)
    a, b = jnp.array([1.0, -1.0, 2.0]), jnp.array([0.0, 1.0, 2.0])
    assert float(DISTANCES.get("l1")(a, b)) == pytest.approx((1 + 2 + 0) / 3)
    assert float(DISTANCES.get("mse")(a, b)) == pytest.approx((1 + 4 + 0) / 3)


@pytest.mark.parametrize("interpolation", penalties.INTERPOLATIONS)
def test_interpolates_lie_on_the_segments_between_reals_and_fakes(interpolation):
    real = jnp.zeros((64, 3, 3, 1))
    fake = jnp.ones((64, 3, 3, 1))
    x_hat = penalties.interpolate(real, fake, jax.random.key(0), interpolation)
    weights = 1.0 - np.asarray(x_hat)[:, 0, 0, 0]  # the weight a of each example's real
    np.testing.assert_array_equal(x_hat, np.broadcast_to(x_hat[:, :1, :1], x_hat.shape))  # one a per example
    assert ((weights >= 0) & (weights <= 1)).all()
    if interpolation == "per_batch":
        assert np.unique(weights).size == 1
    else:
        assert np.unique(weights).size == 64 and 0.3 < weights.mean() < 0.7


@pytest.fixture(scope="module")
def ring8_losses():
    """The gan method of a Ring8 MLP with R1, a gradient penalty and CLR (L1), its state, and one phase input."""
    config = ring8_config()
    config.loss.update(r1_gamma=10.0, gp_weight=10.0)
    config.clr.distance = "l1"
    experiment = build.build(config)
    state = build.initial_state(experiment, sharding.make_mesh(jax.devices()[:1]))
    real = jax.random.uniform(jax.random.key(2), (6, 2), minval=-1, maxval=1)
    inputs = PhaseInputs(nets=state.nets, aux={}, batch={"image": real}, rng=jax.random.key(3), constrain=lambda x: x)
    phases = {phase.name: phase for phase in experiment.method.phases}
    return experiment, state, inputs, phases


def with_g_params(inputs, g_params):
    return PhaseInputs(
        nets={**inputs.nets, "g": inputs.nets["g"].replace(params=g_params)},
        aux=inputs.aux,
        batch=inputs.batch,
        rng=inputs.rng,
        constrain=inputs.constrain,
    )


def test_d_loss_terms_match_a_direct_computation(ring8_losses):
    """Every D term from scratch: the latents and interpolation weights drawn as the loss draws them."""
    experiment, state, inputs, phases = ring8_losses
    total, out = phases["d"].loss(state.nets["d"].params, inputs)
    d_vars, g_vars = state.nets["d"].variables(), state.nets["g"].variables()
    discriminator = experiment.method.networks["d"].module
    d = lambda x: discriminator.apply(d_vars, x, None, train=True)  # noqa: E731
    latent_rng, penalty_rng = jax.random.split(inputs.rng)
    z = jax.random.normal(latent_rng, (6, 8))
    real = inputs.batch["image"]
    fake = experiment.method.networks["g"].module.apply(g_vars, z, None, train=True)
    alpha = jax.random.uniform(penalty_rng, (6, 1))
    x_hat = alpha * real + (1 - alpha) * fake
    real_grads = jax.grad(lambda x: d(x)["logits"].sum())(real)
    hat_grads = jax.grad(lambda x: d(x)["logits"].sum())(x_hat)
    expected = {
        "d_adv": ADVERSARIAL.get("vanilla")(None).d(d(real)["logits"], d(fake)["logits"]),
        "d_r1": 5.0 * jnp.mean(jnp.sum(real_grads**2, axis=1)),
        "d_gp": 10.0 * jnp.mean((jnp.linalg.norm(hat_grads, axis=1) - 1) ** 2),
        "d_clr": 5.0 * jnp.mean(jnp.abs(z - d(fake)["phi"])),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(out.metrics[name], value, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(total, sum(expected.values()), rtol=1e-5)


def global_norm(tree):
    return float(optax.tree.norm(tree))


def test_latent_restoration_trains_d_only(ring8_losses):
    _, state, inputs, phases = ring8_losses
    d_params, g_params = state.nets["d"].params, state.nets["g"].params

    def term(d_params, g_params, name="d_clr"):
        return phases["d"].loss(d_params, with_g_params(inputs, g_params))[1].metrics[name]

    grad_d, grad_g = jax.grad(term, argnums=(0, 1))(d_params, g_params)
    assert global_norm(grad_g) == 0.0 and global_norm(grad_d) > 1e-3
    total_grad_g = jax.grad(lambda g: phases["d"].loss(d_params, with_g_params(inputs, g))[0])(g_params)
    assert global_norm(total_grad_g) == 0.0  # nothing in D's objective reaches G


def test_reconstruction_trains_g_only(ring8_losses):
    _, state, inputs, phases = ring8_losses

    def term(g_params, d_params):
        nets = {"g": inputs.nets["g"], "d": inputs.nets["d"].replace(params=d_params)}
        changed = PhaseInputs(nets=nets, aux={}, batch=inputs.batch, rng=inputs.rng, constrain=inputs.constrain)
        return phases["g"].loss(g_params, changed)[1].metrics["g_rec"]

    grad_g, grad_d = jax.grad(term, argnums=(0, 1))(state.nets["g"].params, state.nets["d"].params)
    assert global_norm(grad_d) == 0.0 and global_norm(grad_g) > 1e-3
