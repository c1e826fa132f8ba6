"""Conditional GANs: label conditioning of G and D, ACGAN's classifier and the projection against hand
computations, which network each term trains, a few steps of every conditional config."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import load_config_file

from clr_gan_jax import build, sharding, train
from clr_gan_jax.default_config import CONDITIONAL
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from clr_gan_jax.objectives.aux_classifier import AuxClassifier
from clr_gan_jax.objectives.plugin import DView, GView

LABELS = jnp.array([0, 1, 2, 0])


def perturbed(variables, seed=0):
    """Every parameter moved by N(0, 0.5): a freshly initialised cBN is the same for every class."""
    leaves, tree = jax.tree.flatten(variables["params"])
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return {**variables, "params": jax.tree.unflatten(tree, noisy)}


@pytest.mark.parametrize("conditioning", ["concat", "cbn"])
def test_generator_output_depends_on_each_samples_own_label(conditioning):
    g = DCGANGenerator(resolution=8, channels=1, width=8, num_classes=3, conditioning=conditioning)
    z = jnp.tile(jax.random.normal(jax.random.key(0), (1, 4)), (4, 1))  # one z, four labels
    variables = perturbed(g.init(jax.random.key(1), z, LABELS))
    out = np.asarray(g.apply(variables, z, LABELS))
    np.testing.assert_allclose(out[0], out[3], atol=1e-6)  # same z, same class
    assert np.abs(out[0] - out[1]).mean() > 1e-3 and np.abs(out[1] - out[2]).mean() > 1e-3
    relabelled = np.asarray(g.apply(variables, z, LABELS.at[1].set(2)))
    np.testing.assert_allclose(relabelled[1], out[2], atol=1e-6)
    np.testing.assert_allclose(relabelled[0], out[0], atol=1e-6)


def test_concat_discriminator_depends_on_the_label():
    d = DCGANDiscriminator(resolution=8, width=8, num_classes=3, conditioning="concat")
    x = jnp.tile(jax.random.normal(jax.random.key(0), (1, 8, 8, 1)), (4, 1, 1, 1))
    variables = d.init(jax.random.key(1), x, LABELS)
    assert variables["params"]["Conv_0"]["kernel"].shape == (4, 4, 1 + 3, 8)  # image + 3 label maps
    logits = np.asarray(d.apply(variables, x, LABELS)["logits"])
    assert logits[0] == pytest.approx(logits[3], abs=1e-6) and abs(logits[0] - logits[1]) > 1e-4


def test_projection_adds_the_embedding_inner_product_to_the_logit():
    d = DCGANDiscriminator(resolution=8, width=8, num_classes=3, conditioning="projection")
    unconditional = DCGANDiscriminator(resolution=8, width=8)
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
    variables = d.init(jax.random.key(1), x, LABELS)
    out = d.apply(variables, x, LABELS)
    plain = unconditional.apply(
        {**variables, "params": {k: v for k, v in variables["params"].items() if k != "embed"}}, x
    )
    embedding = np.asarray(variables["params"]["embed"]["embedding"])
    features = np.asarray(out["features"])
    assert embedding.shape == (3, features.shape[1])
    expected = np.asarray(plain["logits"]) + np.einsum("nf,nf->n", embedding[np.asarray(LABELS)], features)
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-6)


def log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - x.max(1, keepdims=True) - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True))


def test_aux_classifier_terms_are_weighted_cross_entropies():
    real_logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    fake_logits = jnp.array([[0.5, 0.5, 3.0], [1.0, -2.0, 0.0]])
    real_labels, fake_labels = jnp.array([0, 2]), jnp.array([2, 1])
    plugin = AuxClassifier(num_classes=3, weight=0.5)
    assert plugin.heads == (("class_logits", 3),)
    view = DView(
        real=None,
        fake=None,
        real_out={"class_logits": real_logits},
        fake_out={"class_logits": fake_logits},
        latents={"labels": fake_labels},
        labels=real_labels,
    )
    ce_real = -np.mean(log_softmax(real_logits)[[0, 1], [0, 2]])
    ce_fake = -np.mean(log_softmax(fake_logits)[[0, 1], [2, 1]])
    assert float(plugin.d_terms(view)["d_cls"]) == pytest.approx(0.5 * (ce_real + ce_fake), rel=1e-6)
    g_view = GView(None, real_labels, None, {"class_logits": fake_logits}, {"labels": fake_labels}, None, None)
    assert float(plugin.g_terms(g_view)["g_cls"]) == pytest.approx(0.5 * ce_fake, rel=1e-6)


def tiny(config):
    """A config shrunk to 8x8 images, widths of 16, z of 8, batch 8 and one D update per step."""
    config.data.resolution = 8
    config.model.update(g_width=16, d_width=16, z_dim=8)
    config.train.update(batch_size=8, n_critic=1)
    return config


@pytest.fixture(scope="module")
def acgan():
    """configs/cifar10_zoo.py:acgan_clr, tiny, its initial state and one phase input on random images."""
    experiment = build.build(tiny(load_config_file("configs/cifar10_zoo.py", "acgan_clr")), 1)
    state = build.initial_state(experiment, sharding.make_mesh(jax.devices()[:1]))
    batch = {
        "image": jax.random.randint(jax.random.key(2), (8, 8, 8, 3), 0, 256).astype(jnp.uint8),
        "label": jnp.arange(8) % 10,
    }
    inputs = PhaseInputs(nets=state.nets, aux={}, batch=batch, rng=jax.random.key(3), constrain=lambda x: x)
    return experiment, state, inputs, {phase.name: phase for phase in experiment.method.phases}


def norm(tree):
    return float(optax.tree.norm(tree))


def test_classifier_terms_train_d_and_g_each_their_own(acgan):
    _, state, inputs, phases = acgan

    def term(phase, own, other, own_name, other_name, metric):
        nets = {**inputs.nets, other_name: inputs.nets[other_name].replace(params=other)}
        changed = PhaseInputs(nets=nets, aux={}, batch=inputs.batch, rng=inputs.rng, constrain=inputs.constrain)
        return phases[phase].loss(own, changed)[1].metrics[metric]

    d, g = state.nets["d"].params, state.nets["g"].params
    grad_d, grad_g = jax.grad(term, argnums=(1, 2))("d", d, g, "d", "g", "d_cls")
    assert norm(grad_g) == 0.0 and norm(grad_d["class_logits"]) > 1e-3
    assert norm(grad_d["logit"]) == 0.0  # the real/fake logit is not the classifier's business
    grad_g, grad_d = jax.grad(term, argnums=(1, 2))("g", g, d, "g", "d", "g_cls")
    assert norm(grad_d) == 0.0 and norm(grad_g["ConditionalBatchNorm_0"]) > 1e-4


def test_d_phase_fakes_take_the_real_labels_and_the_sampler_draws_uniform_ones(acgan):
    experiment, state, inputs, phases = acgan
    latents = experiment.method.sample_latents(jax.random.key(0), 1000)
    counts = np.bincount(np.asarray(latents["labels"]), minlength=10)
    assert latents["z"].shape == (1000, 8) and counts.min() > 60  # ~100 of each of 10 classes
    _, out = phases["d"].loss(state.nets["d"].params, inputs)
    networks = experiment.method.networks
    real, labels = inputs.batch["image"].astype(jnp.float32) / 127.5 - 1, inputs.batch["label"]
    z = experiment.method.sample_latents(jax.random.split(inputs.rng)[0], 8)["z"]
    fake, _ = networks["g"].module.apply(state.nets["g"].variables(), z, labels, train=True, mutable=["batch_stats"])
    d = lambda x: networks["d"].module.apply(state.nets["d"].variables(), x, None, train=True, mutable=["batch_stats"])
    real_logits, fake_logits = d(real)[0]["class_logits"], d(fake)[0]["class_logits"]
    ce = lambda logits: -np.mean(log_softmax(logits)[np.arange(8), np.asarray(labels)])  # noqa: E731
    assert float(out.metrics["d_cls"]) == pytest.approx(ce(real_logits) + ce(fake_logits), rel=1e-4)


@pytest.mark.parametrize("variant", [name + "_clr" for name in CONDITIONAL])
def test_conditional_variant_trains(variant):
    """Two steps of each conditional config with CLR on 8x8 images: finite losses with the variant's own terms
    (the plain variants differ only in clr.enabled, as tests/test_configs.py checks for every zoo variant)."""
    config = tiny(load_config_file("configs/cifar10_zoo.py", variant))
    mesh = sharding.make_mesh(jax.devices()[:1])
    experiment = build.build(config, 1)
    state = build.initial_state(experiment, mesh)
    step = build.train_step_fn(experiment, mesh)
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    for i in range(2):
        batch = train.step_batch({"image": images, "label": np.arange(8, dtype=np.int32)}, 1, mesh)
        state, metrics = step(state, batch, experiment.method.active_phases(i))
    expected = {"d_adv", "g_adv", "d_clr", "g_rec"} | ({"d_cls", "g_cls"} if variant == "acgan_clr" else set())
    assert expected <= set(metrics) and ("d_cls" in metrics) == (variant == "acgan_clr")
    assert int(state.step) == 2 and all(np.isfinite(float(v)) for v in metrics.values())
    assert ("embed" in state.nets["d"].params) == (variant == "projection_clr")


def test_bad_conditioning_values_are_one_line_errors():
    config = tiny(load_config_file("configs/cifar10_zoo.py", "cgan"))
    config.model.d_conditioning = "film"
    with pytest.raises(UserError, match="model.d_conditioning must be one of"):
        build.build(config, 1)
    config = tiny(load_config_file("configs/cifar10_zoo.py", "dcgan"))
    config.aux_classifier.enabled = True
    with pytest.raises(UserError, match="aux_classifier needs model.num_classes >= 2"):
        build.build(config, 1)
    config = load_config_file("configs/ring8.py", "clr")
    config.model.num_classes = 8
    with pytest.raises(UserError, match="model.num_classes > 0 .* needs model.arch='dcgan'"):
        build.build(config, 1)
