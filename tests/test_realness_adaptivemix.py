"""RealnessGAN's loss and AdaptiveMix's terms against hand computations, which network each term trains (both with
CLR in one config), and two steps of their CIFAR-10 zoo configs (with CLR) on small shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import load_config_file, tiny_zoo, train_steps

from clr_gan_jax import build, sharding
from clr_gan_jax.default_config import base_config
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.models.dcgan import DCGANDiscriminator
from clr_gan_jax.models.mlp import MLPDiscriminator
from clr_gan_jax.objectives import ADVERSARIAL, adaptivemix, realness

A0 = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
A1 = np.array([0.2, 0.2, 0.2, 0.2, 0.2])


def test_shift_moves_the_anchor_clamps_and_splits_mass():
    """Supports -1, -0.5, 0, 0.5, 1: +1 is two outcomes up, the top two piling on the last; +0.25 is half of one."""
    np.testing.assert_allclose(realness.shift(A1, 1.0, -1.0, 1.0), [0, 0, 0.2, 0.2, 0.6], atol=1e-12)
    np.testing.assert_allclose(realness.shift(A0, -1.0, -1.0, 1.0), [0.7, 0.2, 0.1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(realness.shift(A0, 0.25, -1.0, 1.0), [0.05, 0.15, 0.3, 0.3, 0.2], atol=1e-12)
    np.testing.assert_allclose(realness.shift(A0, 0.0, -1.0, 1.0), A0, atol=1e-12)


def test_base_anchors_are_the_mean_histograms_of_the_official_draws():
    fake, real = realness.base_anchors("normal_uniform", 51)
    assert fake.sum() == pytest.approx(1.0) and real.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(real, 1 / 51, atol=1e-3)  # U(-1, 1) over its own range: flat
    np.testing.assert_allclose(fake, fake[::-1], atol=1e-3)  # N(0, 0.1) over its own range: symmetric, peaked
    assert np.argmax(fake) == 25 and fake[25] > 10 * fake[5]
    fake, real = realness.base_anchors("skewnorm", 51)
    np.testing.assert_allclose(fake, real[::-1], atol=2e-3)  # shapes -5 and 5 mirror each other


def kl_by_hand(p, logits):
    logits = np.asarray(logits, np.float64)
    q = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p = np.broadcast_to(p, q.shape)
    return np.mean(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0.0), axis=-1))


@pytest.mark.parametrize("objective", [1, 2, 3])
def test_realness_losses_are_the_papers_kls(objective):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    a0, a1 = np.array([0.7, 0.2, 0.1, 0, 0]), np.array([0, 0, 0.2, 0.2, 0.6])
    loss = realness.realness_loss(a0, a1, objective)
    assert loss.outputs == 5 and loss.g_reads_real == (objective == 3)
    d_expected = kl_by_hand(a1, real) + kl_by_hand(a0, fake)
    assert float(loss.d(jnp.array(real), jnp.array(fake))) == pytest.approx(d_expected, rel=1e-5)
    d_of_real = np.exp(real) / np.exp(real).sum(-1, keepdims=True)
    first = {1: 0.0, 2: kl_by_hand(a1, fake), 3: np.mean([kl_by_hand(d_of_real[i], fake[i : i + 1]) for i in range(3)])}
    g_expected = first[objective] - kl_by_hand(a0, fake)
    assert float(loss.g(jnp.array(fake), jnp.array(real))) == pytest.approx(g_expected, rel=1e-5)


def test_realness_from_the_config_and_its_misuse():
    config = base_config()
    config.update_from_flattened_dict({"loss.adversarial": "realness", "model.d_outputs": 5})
    loss = ADVERSARIAL.get("realness")(config)
    fake, real = realness.base_anchors("normal_uniform", 5)
    logits = jnp.zeros((2, 5))  # uniform D: the D loss is the sum of the shifted anchors' KLs to uniform
    expected = kl_by_hand(realness.shift(real, 1.0, -1.0, 1.0), logits) + kl_by_hand(
        realness.shift(fake, -1.0, -1.0, 1.0), logits
    )
    assert float(loss.d(logits, logits)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(UserError, match="needs model.d_outputs >= 2"):
        build.build(_with(config, {"model.d_outputs": 1}))
    with pytest.raises(UserError, match="reads 1 D output"):
        build.build(_with(config, {"loss.adversarial": "vanilla"}))
    with pytest.raises(UserError, match="R1, WGAN-GP"):
        build.build(_with(config, {"loss.r1_gamma": 10.0}))
    with pytest.raises(UserError, match="realness.objective must be one of"):
        build.build(_with(config, {"realness.objective": 4}))


def _with(config, fields):
    config = config.copy_and_resolve_references()
    config.update_from_flattened_dict(fields)
    return config


def test_discriminators_give_one_logit_per_outcome():
    for d, x in [
        (DCGANDiscriminator(resolution=8, width=8, num_outputs=5), jnp.zeros((3, 8, 8, 1))),
        (MLPDiscriminator(hidden=8, depth=1, num_outputs=5), jnp.zeros((3, 2))),
    ]:
        outputs, _ = jax.eval_shape(lambda x, d=d: d.init_with_output(jax.random.key(0), x), x)
        assert outputs["logits"].shape == (3, 5)


def test_adaptivemix_shrinkage_by_hand():
    """f(x) = relu(x W): S = -mean cos(f(lam x + (1-lam) x_pi), lam f(x) + (1-lam) f(x_pi) + e)."""
    rng = np.random.default_rng(1)
    x, w, noise = rng.normal(size=(3, 4)), rng.normal(size=(4, 6)), 0.05 * rng.normal(size=(3, 6))
    pi, lam = np.array([2, 0, 1]), 0.3
    f = lambda v: np.maximum(v @ w, 0.0)  # noqa: E731
    out, target = f(lam * x + (1 - lam) * x[pi]), lam * f(x) + (1 - lam) * f(x)[pi] + noise
    cos = np.sum(out * target, 1) / np.linalg.norm(out, axis=1) / np.linalg.norm(target, axis=1)
    d = lambda v, labels: {"features": jax.nn.relu(v @ jnp.array(w))}  # noqa: E731
    value = adaptivemix.shrinkage(d, jnp.array(x), jnp.array(f(x)), None, jnp.array(pi), lam, jnp.array(noise))
    assert float(value) == pytest.approx(-np.mean(cos), rel=1e-5)
    linear = lambda v, labels: {"features": v @ jnp.array(w)}  # noqa: E731  f linear, no noise: cos = 1
    exact = adaptivemix.shrinkage(linear, jnp.array(x), jnp.array(x @ w), None, jnp.array(pi), lam, 0.0)
    assert float(exact) == pytest.approx(-1.0, abs=1e-6)


@pytest.fixture(scope="module")
def combined():
    """configs/cifar10_zoo.py:realness_clr with AdaptiveMix on too (the three combine), tiny, its initial state, one
    phase input, and the jitted metric gradients of each phase."""
    config = tiny_zoo(load_config_file("configs/cifar10_zoo.py", "realness_clr"))
    config.adaptivemix.enabled = True
    experiment = build.build(config, 1)
    state = build.initial_state(experiment, sharding.make_mesh(jax.devices()[:1]))
    images = jax.random.randint(jax.random.key(2), (8, 8, 8, 3), 0, 256).astype(jnp.uint8)
    inputs = PhaseInputs(state.nets, {}, {"image": images, "label": jnp.zeros(8, jnp.int32)}, jax.random.key(3), None)
    phases = {phase.name: phase for phase in experiment.method.phases}
    return config, state, inputs, {name: metric_grads(phases, inputs, name, TERMS[name]) for name in phases}


TERMS = {"d": ("d_adv", "d_adaptivemix"), "g": ("g_adv", "g_adaptivemix")}


def metric_grads(phases, inputs, phase, terms):
    """Jitted ``(d, g, batch) -> ({term: (d term / d d, d term / d g)}, metrics)`` of ``phase``'s loss."""
    other = "g" if phase == "d" else "d"

    def metrics(d, g, batch):
        nets = {**inputs.nets, other: inputs.nets[other].replace(params=g if other == "g" else d)}
        own = d if phase == "d" else g
        out = phases[phase].loss(own, PhaseInputs(nets, {}, batch, inputs.rng, lambda x: x))[1].metrics
        return {term: out[term] for term in terms}, out

    return jax.jit(jax.jacrev(metrics, argnums=(0, 1), has_aux=True))


def norm(tree):
    return float(optax.tree.norm(tree))


@pytest.mark.parametrize("phase", ["d", "g"])
def test_each_new_term_trains_its_own_network(combined, phase):
    _, state, inputs, grads = combined
    jacobians, _ = grads[phase](state.nets["d"].params, state.nets["g"].params, inputs.batch)
    for term in TERMS[phase]:
        grad_d, grad_g = jacobians[term]
        trained, frozen = (grad_d, grad_g) if phase == "d" else (grad_g, grad_d)
        assert norm(frozen) == 0.0 and norm(trained) > 1e-4, term


def test_realness_objective_3_reads_the_reals_in_gs_loss(combined):
    _, state, inputs, grads = combined
    d, g = state.nets["d"].params, state.nets["g"].params
    inverted = {**inputs.batch, "image": 255 - inputs.batch["image"]}
    first, second = (grads["g"](d, g, batch)[1]["g_adv"] for batch in (inputs.batch, inverted))
    assert abs(float(first) - float(second)) > 1e-6


@pytest.mark.parametrize("variant", ["realness_clr", "adaptivemix_clr"])
def test_comparison_configs_train(variant):
    config = tiny_zoo(load_config_file("configs/cifar10_zoo.py", variant))
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    state, (*_, metrics) = train_steps(config, images, np.zeros(8, np.int32))
    realness_run = variant.startswith("realness")
    expected = {"d_adv", "g_adv", "d_clr", "g_rec"} | (set() if realness_run else {"d_adaptivemix", "g_adaptivemix"})
    assert expected <= set(metrics) and int(state.step) == 2
    assert all(np.isfinite(float(v)) for v in metrics.values())
    if realness_run:  # KL(A1 || D(x)) + KL(A0 || D(G(z))) >= 0
        assert float(metrics["d_adv"]) > 0.0
    else:  # each shrinkage term is minus a mean cosine
        assert -2.0 <= float(metrics["d_adaptivemix"]) <= 2.0 and -1.0 <= float(metrics["g_adaptivemix"]) <= 1.0
