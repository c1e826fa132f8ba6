"""InfoGAN: its codes, the mutual-information term against hand computations, which network each of its terms
trains, CLR's reconstruction with Q's codes, the traverse picture's rows, and a few steps of its config with CLR."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import load_config_file, train_steps
from scipy.special import log_softmax

from clr_gan_jax import build, generate, methods, traverse
from clr_gan_jax.errors import UserError
from clr_gan_jax.latents import rows_latents
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.objectives.clr import CLR
from clr_gan_jax.objectives.infogan import InfoCodes, InfoGAN
from clr_gan_jax.objectives.plugin import GView

CODES = InfoCodes(categories=3, continuous=2)


def tiny(variant="infogan_bn_clr", **overrides):
    """configs/digits_infogan.py:<variant> at 8x8, widths 8, z 4, batch 8, 3 categories."""
    config = load_config_file("configs/digits_infogan.py", variant)
    config.data.resolution = 8
    config.model.update(g_width=8, d_width=8, z_dim=4)
    config.infogan.categories = 3
    config.train.update(batch_size=8)
    config.update_from_flattened_dict(overrides)
    return config


@pytest.fixture(scope="module")
def setup():
    """The tiny infogan (no CLR, no R1) experiment, its initial state, one phase input on random images."""
    experiment = build.build(tiny("infogan", **{"loss.r1_gamma": 0.0}), 1)
    state = jax.jit(lambda: methods.init_state(experiment.method, jax.random.key(0)))()
    batch = {"image": jax.random.randint(jax.random.key(2), (8, 8, 8, 1), 0, 256).astype(jnp.uint8)}
    batch["label"] = jnp.zeros((8,), jnp.int32)
    inputs = PhaseInputs(nets=state.nets, aux={}, batch=batch, rng=jax.random.key(3), constrain=lambda x: x)
    return experiment, state, inputs, {phase.name: phase for phase in experiment.method.phases}


def test_codes_are_one_hot_then_gaussian_and_q_reads_them_back():
    codes = np.asarray(CODES.sample(jax.random.key(0), 3000))
    assert codes.shape == (3000, 5)
    one_hot = codes[:, :3]
    assert set(np.unique(one_hot)) == {0.0, 1.0} and (one_hot.sum(1) == 1).all()
    assert np.bincount(one_hot.argmax(1)).min() > 900  # uniform over 3 values
    assert abs(codes[:, 3:].mean()) < 0.05 and abs(codes[:, 3:].std() - 1) < 0.05
    outputs = {"q_cat": jnp.array([[0.1, 2.0, -1.0]]), "q_cont": jnp.array([[0.5, -0.25]])}
    np.testing.assert_array_equal(CODES.infer(outputs), [[0, 1, 0, 0.5, -0.25]])


def test_mutual_information_is_weighted_cross_entropy_plus_mse():
    plugin = InfoGAN(CODES, cat_weight=0.7, cont_weight=3.0)
    assert plugin.heads == (("q_cat", 3), ("q_cont", 2))
    rng = np.random.default_rng(0)
    logits, means = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    k, u = np.array([0, 2, 1, 2]), rng.normal(size=(4, 2))
    codes = jnp.asarray(np.concatenate([np.eye(3)[k], u], 1), jnp.float32)
    terms = plugin.mutual_information("g", {"q_cat": jnp.asarray(logits), "q_cont": jnp.asarray(means)}, codes)
    assert terms["g_info_cat"] == pytest.approx(-0.7 * log_softmax(logits, 1)[np.arange(4), k].mean(), rel=1e-5)
    assert terms["g_info_cont"] == pytest.approx(3.0 * np.mean((means - u) ** 2), rel=1e-5)
    only_continuous = InfoGAN(InfoCodes(0, 2)).mutual_information("d", {"q_cont": jnp.asarray(means)}, codes[:, 3:])
    assert set(only_continuous) == {"d_info_cont"}


def test_mi_term_trains_d_trunk_and_q_in_ds_phase_and_g_in_gs_phase_and_matches_hand_computation(setup):
    """The zoo's Q step updates G and D (trunk and Q heads) with the MI loss: here D's copy of the term reaches D's
    trunk and Q heads only, G's copy G only; neither touches D's real/fake logit. D's copy is CE and MSE of Q's
    outputs on G([z, codes]) for the D phase's own latents."""
    experiment, state, inputs, phases = setup
    method = experiment.method

    def term(phase, own, other, other_name, metric):
        nets = {**inputs.nets, other_name: inputs.nets[other_name].replace(params=other)}
        changed = PhaseInputs(nets=nets, aux={}, batch=inputs.batch, rng=inputs.rng, constrain=inputs.constrain)
        return phases[phase].loss(own, changed)[1].metrics[metric]

    def norms(tree):
        return {name: optax.tree.norm(part) for name, part in tree.items()}

    @jax.jit
    def everything(d, g):
        grads = {}
        for metric in ("d_info_cat", "d_info_cont"):
            grad_d, grad_g = jax.grad(term, argnums=(1, 2))("d", d, g, "g", metric)
            grads[metric] = (norms(grad_d), optax.tree.norm(grad_g))
        for metric in ("g_info_cat", "g_info_cont"):
            grad_g, grad_d = jax.grad(term, argnums=(1, 2))("g", g, d, "d", metric)
            grads[metric] = (optax.tree.norm(grad_d), norms(grad_g))
        metrics = phases["d"].loss(d, inputs)[1].metrics
        drawn = method.sample_latents(jax.random.split(inputs.rng)[0], 8)  # the D phase's latent key
        g_in = jnp.concatenate([drawn["z"], drawn["codes"]], 1)
        modules = {name: method.networks[name].module for name in ("g", "d")}
        fake, _ = modules["g"].apply(state.nets["g"].variables(), g_in, train=True, mutable=["batch_stats"])
        q = modules["d"].apply(state.nets["d"].variables(), fake, train=True, mutable=["batch_stats"])[0]
        return grads, metrics, drawn["codes"], q

    grads, metrics, codes, q = jax.device_get(everything(state.nets["d"].params, state.nets["g"].params))
    for metric, head, other_head in (("d_info_cat", "q_cat", "q_cont"), ("d_info_cont", "q_cont", "q_cat")):
        grad_d, grad_g = grads[metric]
        assert grad_g == 0.0 and grad_d[head] > 1e-3 and grad_d["Conv_0"] > 1e-6
        assert grad_d["logit"] == 0.0 and grad_d[other_head] == 0.0
    for metric in ("g_info_cat", "g_info_cont"):
        grad_d, grad_g = grads[metric]
        assert grad_d == 0.0 and grad_g["Project_0"] > 1e-6
    ce = -np.mean(log_softmax(q["q_cat"], 1)[np.arange(8), codes[:, :3].argmax(1)])
    assert float(metrics["d_info_cat"]) == pytest.approx(ce, rel=1e-4)
    assert float(metrics["d_info_cont"]) == pytest.approx(np.mean((q["q_cont"] - codes[:, 3:]) ** 2), rel=1e-4)
    assert state.nets["g"].params["Project_0"]["kernel"].shape[2] == 4 + 5  # G's input is [z, codes]


def test_clr_rebuilds_a_real_from_phi_and_the_codes_q_reads_off_it():
    seen = {}
    outputs = {"phi": jnp.ones((2, 4)), "q_cat": jnp.array([[0.0, 1.0, 0.0], [3.0, 0, 0]]), "q_cont": jnp.zeros((2, 2))}
    view = GView(
        real=jnp.zeros((2, 1)),
        labels=None,
        fake=jnp.zeros((2, 1)),
        fake_out={},
        latents={},
        generator=lambda latents: seen.update(latents) or jnp.zeros((2, 1)),
        discriminator=lambda x, labels: outputs,
        infer_codes=lambda d_outputs: {"codes": CODES.infer(d_outputs)},
    )
    CLR(z_dim=4).g_terms(view)
    np.testing.assert_array_equal(seen["z"], np.ones((2, 4)))
    np.testing.assert_array_equal(seen["codes"], [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]])


def test_traverse_rows_differ_from_their_base_only_in_the_varied_code():
    base = {"z": jax.random.normal(jax.random.key(0), (4, 6)), "codes": CODES.sample(jax.random.key(1), 4)}
    sweep = jnp.linspace(-2.0, 2.0, 4)
    rows = CODES.traversal(4, sweep)
    assert len(rows) == 3 + 2 * 4
    latents = {name: np.asarray(v).reshape(len(rows), 4, -1) for name, v in rows_latents(base, rows).items()}
    for r in range(len(rows)):
        np.testing.assert_array_equal(latents["z"][r], base["z"])  # every row has the same columns of z
        varied = slice(0, 3) if r < 3 else slice(3 + (r - 3) // 4, 4 + (r - 3) // 4)
        kept = np.ones(5, bool)
        kept[varied] = False
        np.testing.assert_array_equal(latents["codes"][r][:, kept], np.asarray(base["codes"])[:, kept])
        expected = np.eye(3)[r] if r < 3 else [float(sweep[(r - 3) % 4])]
        np.testing.assert_allclose(latents["codes"][r][:, varied], np.tile(expected, (4, 1)))


def test_infogan_clr_trains_and_its_traverse_grid_has_a_row_per_code_value():
    """Two steps of configs/digits_infogan.py:infogan_bn_clr (tiny; the fixture's runs infogan's losses without
    BatchNorm): every term is there and finite, G's BatchNorm statistics moved; the traverse
    picture has 3 + 2 x columns rows; `--mode=generate` refuses a G that reads codes, `--mode=traverse` a model
    without codes (before it looks for a checkpoint)."""
    config = tiny(**{"loss.r1_gamma": 0.0})  # R1's second-order compile is the zoo loop's, tested elsewhere
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)
    state, (*_, metrics) = train_steps(config, images, np.zeros(8, np.int32))
    expected = {"d_adv", "d_clr", "d_info_cat", "d_info_cont", "g_adv", "g_rec", "g_info_cat", "g_info_cont"}
    assert expected <= set(metrics) and all(np.isfinite(float(v)) for v in metrics.values())
    assert float(np.abs(state.nets["g"].collections["batch_stats"]["BatchNorm_0"]["mean"]).max()) > 0
    experiment = build.build(config, 1)
    images = traverse.traverse_samples(experiment, state.ema, columns=3, span=2.0, seed=0)
    changed = traverse.traverse_samples(experiment, state.ema, columns=3, span=1.0, seed=0)
    assert images.shape == ((3 + 2 * 3) * 3, 8, 8, 1)
    np.testing.assert_array_equal(images[:9], changed[:9])  # the categorical rows do not sweep
    assert np.abs(images[9:] - changed[9:]).max() > 1e-5
    with pytest.raises(UserError, match="latent codes"):
        generate.generate_images(config, "/nonexistent", [0], "/tmp/unused")
    with pytest.raises(UserError, match="needs latent codes"):
        traverse.write_traverse_grid(tiny(**{"infogan.enabled": False}), "/nonexistent", 3, 2.0, 0)
