"""The generic train step: phases, repeats, lazy phases, aux state, projections; 8 devices equal 1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import BIASES_BEFORE_BATCHNORM, digits_config, ring8_config

from clr_gan_jax import build, sharding, train
from clr_gan_jax.methods import Method, Network, Phase, PhaseOutput, init_state, train_step
from clr_gan_jax.methods.base import ema_update


def toy_method() -> Method:
    """One scalar 'network' w. Phase 'a' (2 repeats) pulls w towards each repeat's batch value and records
    which values it saw in aux; phase 'b' runs every 2 steps and counts its runs."""

    def loss_a(params, inputs):
        seen = inputs.aux["seen"].at[inputs.aux["count_a"]].set(inputs.batch["image"][0])
        aux = {"seen": seen, "count_a": inputs.aux["count_a"] + 1}
        return jnp.square(params["w"] - inputs.batch["image"][0]), PhaseOutput(metrics={}, aux=aux)

    def loss_b(params, inputs):
        return 0.0 * params["w"], PhaseOutput(
            metrics={"b_runs": inputs.aux["count_b"] + 1.0}, aux={"count_b": inputs.aux["count_b"] + 1}
        )

    return Method(
        networks={
            "g": Network(module=None, optimizer=optax.sgd(0.5), project=lambda p: {"w": jnp.minimum(p["w"], 2.5)})
        },
        phases=(Phase("a", "g", loss_a, repeats=2), Phase("b", "g", loss_b, every=2)),
        init_variables=lambda rng: {"g": {"params": {"w": jnp.zeros(())}}},
        sample_latents=lambda rng, n: {"z": jnp.zeros((n, 1))},
        generate=lambda variables, latents: latents["z"],
        end_of_step=lambda state: state.replace(ema=ema_update(state.ema, state.nets["g"], 0.5)),
        real_batches=2,
        init_aux=lambda: {
            "seen": jnp.zeros(8),
            "count_a": jnp.zeros((), jnp.int32),
            "count_b": jnp.zeros((), jnp.int32),
        },
    )


def test_phases_repeats_lazy_phases_aux_and_projection():
    method = toy_method()
    state = init_state(method, jax.random.key(0))
    step = jax.jit(lambda s, b, active: train_step(method, s, b, active), static_argnums=2)
    assert [method.active_phases(i) for i in range(4)] == [("a", "b"), ("a",), ("a", "b"), ("a",)]
    w = []
    for i in range(4):
        batch = {"image": jnp.array([[10.0 * i + 1], [10.0 * i + 2]])}  # repeat r reads real batch r
        state, metrics = step(state, batch, method.active_phases(i))
        w.append(float(state.nets["g"].params["w"]))
        assert ("b_runs" in metrics) == (i % 2 == 0)
    np.testing.assert_array_equal(state.aux["seen"], [1, 2, 11, 12, 21, 22, 31, 32])
    assert int(state.aux["count_b"]) == 2 and int(state.step) == 4
    # sgd(0.5) on (w - x)^2 moves w to x; the projection caps it at 2.5
    assert w[0] == 2.0 and w[1] == 2.5 and w[3] == 2.5
    assert 0 < float(state.ema["params"]["w"]) < 2.5


@pytest.fixture(scope="module")
def one_vs_eight():
    """Three steps of a DCGAN with every term (R1, CLR) and n_critic 2 on 1 device and on 8."""
    assert len(jax.devices()) == 8, "conftest.py forces 8 CPU devices"
    config = digits_config()
    config.loss.r1_gamma = 1.0
    config.train.update(n_critic=2, ema_decay=0.9)
    reals = np.random.default_rng(0).integers(0, 256, (3, 32, 8, 8, 1), dtype=np.uint8)

    def run(devices):
        mesh = sharding.make_mesh(devices)
        experiment = build.build(config, mesh.size)
        state = build.initial_state(experiment, mesh)
        initial = jax.device_get(state)
        step = build.train_step_fn(experiment, mesh)
        history = []
        for i in range(3):
            batch = train.step_batch({"image": reals[i], "label": np.zeros(32, np.int32)}, 2, mesh)
            state, metrics = step(state, batch, experiment.method.active_phases(i))
            history.append(jax.device_get(metrics))
        return experiment, initial, jax.device_get(state), history

    return run(jax.devices()[:1]), run(jax.devices())


def test_eight_devices_match_one(one_vs_eight):
    (experiment, _, state1, history1), (_, _, state8, history8) = one_vs_eight
    for m1, m8 in zip(history1, history8):
        assert m1.keys() == m8.keys() >= {"d_adv", "d_r1", "d_clr", "g_adv", "g_rec", "d_loss", "g_loss", "d_grad_norm"}
        for name in m1:
            np.testing.assert_allclose(m8[name], m1[name], rtol=1e-5, atol=1e-5, err_msg=name)
    compared = 0
    for (path, p1), p8 in zip(jax.tree_util.tree_leaves_with_path(state1), jax.tree.leaves(state8)):
        name = jax.tree_util.keystr(path)
        if not name.endswith(BIASES_BEFORE_BATCHNORM):
            np.testing.assert_allclose(p8, p1, rtol=1e-5, atol=1e-5, err_msg=name)
            compared += 1
    assert compared > 40
    latents = build.fixed_latents(experiment, 4)
    generate = build.generate_fn(experiment)
    np.testing.assert_allclose(generate(state8.ema, latents), generate(state1.ema, latents), atol=1e-5)


def test_step_counts_and_ema_trails_g(one_vs_eight):
    (_, initial, state, _), _ = one_vs_eight
    assert int(state.step) == 3
    g0, g, ema = (jax.tree.leaves(s) for s in (initial.nets["g"].params, state.nets["g"].params, state.ema["params"]))
    assert all(np.abs(e - a).max() > 0 and np.abs(e - b).max() > 0 for a, b, e in zip(g0, g, ema))
    bn = state.nets["g"].collections["batch_stats"]["BatchNorm_0"]["mean"]
    np.testing.assert_array_equal(state.ema["batch_stats"]["BatchNorm_0"]["mean"], bn)


def test_wgan_clipping_and_spectral_norm_state():
    """optim.d_clip bounds every D parameter after each update; spectral-norm vectors are D state that steps update."""
    config = ring8_config()
    config.loss.adversarial = "wgan"
    config.optim.update(name="rmsprop", b2=0.99, d_clip=0.01, d_lr=1e-2)
    config.model.spectral_norm = True
    mesh = sharding.make_mesh(jax.devices()[:1])
    experiment = build.build(config, 1)
    state = build.initial_state(experiment, mesh)
    before = jax.device_get(state.nets["d"].collections["spectral"])
    assert max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.nets["d"].params)) > 0.01
    step = build.train_step_fn(experiment, mesh)
    points = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    state, _ = step(state, train.step_batch({"image": points, "label": np.zeros(64, np.int32)}, 2, mesh), ("d", "g"))
    assert max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.nets["d"].params)) == pytest.approx(0.01)
    after = jax.device_get(state.nets["d"].collections["spectral"])
    assert set(after) == set(before) and len(after) == 3  # two hidden layers and the logit
    assert all(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before)))
