"""Conditional GANs: label conditioning of G and D, ACGAN's classifier and the projection against hand
computations, which network each term trains, a few steps of every conditional config, bitwise resume."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_equal, load_config_file, read_jsonl, restore_state, tiny_zoo, train_steps
from PIL import Image

from clr_gan_jax import build, evaluate, export, generate, images, sharding, train
from clr_gan_jax.data.embedded import DigitsSource, load_digits_images
from clr_gan_jax.default_config import CONDITIONAL
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.metrics import evaluator, features, fid
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
    plugin, paper = AuxClassifier(num_classes=3, weight=0.5), AuxClassifier(num_classes=3, weight=0.5, fakes_in_d=True)
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
    assert float(plugin.d_terms(view)["d_cls"]) == pytest.approx(0.5 * ce_real, rel=1e-6)
    assert float(paper.d_terms(view)["d_cls"]) == pytest.approx(0.5 * (ce_real + ce_fake), rel=1e-6)
    g_view = GView(None, real_labels, None, {"class_logits": fake_logits}, {"labels": fake_labels}, None, None)
    assert float(plugin.g_terms(g_view)["g_cls"]) == pytest.approx(0.5 * ce_fake, rel=1e-6)


@pytest.fixture(scope="module")
def acgan():
    """configs/cifar10_zoo.py:acgan_clr with the fakes' cross-entropy in D's loss too (so D's term reads the fakes),
    tiny, its initial state and one phase input on random images."""
    config = tiny_zoo(load_config_file("configs/cifar10_zoo.py", "acgan_clr"))
    config.aux_classifier.fakes_in_d = True
    experiment = build.build(config, 1)
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
    config = tiny_zoo(load_config_file("configs/cifar10_zoo.py", variant))
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    state, (*_, metrics) = train_steps(config, images, np.arange(8, dtype=np.int32))
    expected = {"d_adv", "g_adv", "d_clr", "g_rec"} | ({"d_cls", "g_cls"} if variant == "acgan_clr" else set())
    assert expected <= set(metrics) and ("d_cls" in metrics) == (variant == "acgan_clr")
    assert int(state.step) == 2 and all(np.isfinite(float(v)) for v in metrics.values())
    assert ("embed" in state.nets["d"].params) == (variant == "projection_clr")


def test_bad_conditioning_values_are_one_line_errors():
    config = tiny_zoo(load_config_file("configs/cifar10_zoo.py", "cgan"))
    config.model.d_conditioning = "film"
    with pytest.raises(UserError, match="model.d_conditioning must be one of"):
        build.build(config, 1)
    config = tiny_zoo(load_config_file("configs/cifar10_zoo.py", "dcgan"))
    config.aux_classifier.enabled = True
    with pytest.raises(UserError, match="aux_classifier needs model.num_classes >= 2"):
        build.build(config, 1)
    config = load_config_file("configs/ring8.py", "clr")
    config.model.num_classes = 8
    with pytest.raises(UserError, match="model.num_classes > 0 .* needs model.arch='dcgan'"):
        build.build(config, 1)


def test_intra_frechet_finds_the_one_class_that_differs():
    rng = np.random.default_rng(0)
    real = [rng.normal(size=(200, 4)) + k for k in range(3)]
    statistics = [fid.feature_statistics(f) for f in real]
    fake = [real[0], real[1] + 1.0, real[2]]  # class 1 moved by 1 in each of 4 dimensions: FD = 4
    classes = np.repeat(np.arange(3), 200)
    results = evaluator.intra_frechet(np.concatenate(fake), classes, statistics, "intra_fid")
    assert results["intra_fid_1"] == pytest.approx(4.0, rel=1e-4)
    assert abs(results["intra_fid_0"]) < 1e-6 and abs(results["intra_fid_2"]) < 1e-6
    assert results["intra_fid"] == pytest.approx(4.0 / 3, rel=1e-4)
    np.testing.assert_array_equal(evaluator.generated_classes(5, 6, 3), [2, 0, 1, 2, 0, 1])


def test_intra_digits_on_real_digits_with_one_class_planted():
    """Samples in the evaluator's class order (sample i of class i mod 10) taken from the real digits score low in
    every class; the same stream with class 3's samples replaced by eights is far off in class 3 only."""
    source = DigitsSource(16)
    images, labels = load_digits_images(16)
    by_class = [images[labels == k][..., None] for k in range(10)]

    def sample_fn(planted: bool):
        def fn(batch_index, batch_size):
            positions = batch_index * batch_size + np.arange(batch_size)
            classes = np.asarray(evaluator.generated_classes(batch_index * batch_size, batch_size, 10))
            classes = np.where(planted & (classes == 3), 8, classes)
            return np.stack([by_class[c][(p // 10) % len(by_class[c])] for c, p in zip(classes, positions)])

        return fn

    metric = evaluator.create_evaluator(
        ["intra_digits"],
        dataset_name="digits",
        source=source,
        resolution=16,
        num_samples=1000,
        batch_size=200,
        cache_dir="unused",
    )
    honest, planted = metric(sample_fn(False)), metric(sample_fn(True))
    assert set(honest) == {"intra_digits_fd", *(f"intra_digits_fd_{k}" for k in range(10))}
    assert max(honest[f"intra_digits_fd_{k}"] for k in range(10)) < 5.0
    assert planted["intra_digits_fd_3"] > 10 * max(honest[f"intra_digits_fd_{k}"] for k in range(10))
    for k in set(range(10)) - {3}:
        assert planted[f"intra_digits_fd_{k}"] == pytest.approx(honest[f"intra_digits_fd_{k}"])


def tiny_digits(variant: str, steps: int):
    config = tiny_zoo(load_config_file("configs/digits_dcgan_clr.py", variant))
    config.train.update(steps=steps, log_every=2, sample_every=4, checkpoint_every=2, num_samples=20)
    config.eval.update(every=4, num_samples=200, batch_size=40)
    return config


@pytest.mark.slow
def test_conditional_run_resumes_bitwise_draws_class_rows_generates_and_evaluates_per_class(tmp_path):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train.train_and_evaluate(tiny_digits("acgan_clr", 4), straight)
    train.train_and_evaluate(tiny_digits("acgan_clr", 2), resumed)
    train.train_and_evaluate(tiny_digits("acgan_clr", 4), resumed)
    config = tiny_digits("acgan_clr", 4)
    assert_trees_equal(restore_state(config, straight, 4), restore_state(config, resumed, 4))

    grid = np.asarray(Image.open(os.path.join(straight, "samples", "step_0000004.png")))
    rows, columns = 10 * 9 + 1, 2 * 9 + 1  # one row of 2 per class, 8 px + 1 px padding (then upscaled)
    assert grid.shape[0] % rows == 0 and grid.shape[:2] == (
        rows * grid.shape[0] // rows,
        columns * grid.shape[0] // rows,
    )

    evals = [line for line in read_jsonl(os.path.join(straight, "metrics.jsonl")) if "eval/intra_digits_fd" in line]
    assert len(evals) == 1 and all(np.isfinite(evals[0][f"eval/intra_digits_fd_{k}"]) for k in range(10))
    (line,) = [line for line in evaluate.run(config, straight) if line["metric"] == "intra_digits"]
    assert line["results"] == pytest.approx({k.removeprefix("eval/"): v for k, v in evals[0].items() if "intra" in k})

    outdir = str(tmp_path / "generated")
    experiment = build.build(config)
    variables, _ = export.restore_ema(experiment, straight, None)
    for class_idx in (1, 7):  # --mode=generate --class_idx: G's output for that class (4 steps leave classes alike)
        (path,) = generate.generate_images(config, straight, [0], outdir + str(class_idx), class_idx=class_idx)
        latents = {"z": jnp.asarray(generate.seed_latents([0], 8)), "labels": jnp.array([class_idx])}
        expected = images.to_uint8(experiment.method.generate(variables, latents))[0, ..., 0]
        np.testing.assert_array_equal(np.asarray(Image.open(path)), expected)
    with pytest.raises(UserError, match="choose the class with --class_idx"):
        generate.generate_images(config, straight, [0], outdir)


class CountingSource:
    """Labelled toy images (class k: pixels around 40 k) that count how often they are read."""

    num_classes = 3

    def __init__(self):
        self.reads = 0
        rng = np.random.default_rng(0)
        self._labels = np.arange(30) % 3
        self._images = (40 * self._labels[:, None] + rng.integers(0, 30, (30, 4))).astype(np.uint8)

    def __len__(self):
        return 30

    def __getitem__(self, i):
        self.reads += 1
        return {"image": self._images[i], "label": np.int32(self._labels[i])}


def test_class_statistics_split_the_reals_by_label_and_are_cached_per_class(tmp_path):
    source = CountingSource()
    apply = features.BatchedApply(lambda variables, x: {"f": x.astype(jnp.float32)}, {}, batch_size=8)
    cache = lambda k: str(tmp_path / f"class{k}.npz")  # noqa: E731
    first = evaluator.ClassStatistics(apply, "f", source, 3, cache_path=cache).statistics
    assert source.reads == 30 and sorted(os.listdir(tmp_path)) == ["class0.npz", "class1.npz", "class2.npz"]
    for k, (mu, _) in enumerate(first):
        np.testing.assert_allclose(mu, source._images[source._labels == k].mean(0), rtol=1e-5)
    again = evaluator.ClassStatistics(apply, "f", source, 3, cache_path=cache).statistics
    assert source.reads == 30  # read from the cache
    np.testing.assert_array_equal(again[1][1], first[1][1])
