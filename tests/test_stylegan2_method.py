"""The stylegan2 method: its phase schedule and lazy-regularisation scaling, EMA ramp-up, style mixing, w_avg,
the path-length mean, CLR's routing, training on 1 and 8 devices, and exact resumption from a checkpoint (the
kill-and-relaunch path itself is tested in test_train.py; it does not depend on the method)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import BIASES_BEFORE_BATCHNORM, assert_trees_equal, micro_config, restore_state

from clr_gan_jax import build, checkpoints, optim, sharding, train
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.methods.base import Apply


@pytest.fixture(scope="module")
def micro():
    """(experiment, initial state on one device, one batch of stacked digits)."""
    config = micro_config()
    mesh = sharding.make_mesh(jax.devices()[:1])
    experiment = build.build(config, 1)
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    batch = {"image": jnp.asarray(images)[None], "label": jnp.zeros((1, 8), jnp.int32)}
    return experiment, build.initial_state(experiment, mesh), batch


def inputs_of(state, batch, rng=0, nets=None):
    return PhaseInputs(
        nets=nets or state.nets,
        aux=state.aux,
        batch=jax.tree.map(lambda x: x[0], batch),
        rng=jax.random.key(rng),
        constrain=lambda x: x,
    )


def test_phase_schedule_and_the_lazy_regularisation_scaling():
    experiment = build.build(micro_config(**{"train.g_reg_interval": 2}), 1)
    method = experiment.method
    assert [p.name for p in method.phases] == ["g", "g_reg", "d", "d_reg"]  # the official order
    schedule = [method.active_phases(i) for i in range(5)]
    assert schedule == [("g", "g_reg", "d", "d_reg"), ("g", "d"), ("g", "g_reg", "d"), ("g", "d"), schedule[0]]
    without = build.build(micro_config(**{"loss.pl_weight": 0.0, "loss.r1_gamma": 0.0}), 1).method
    assert [p.name for p in without.phases] == ["g", "d"]

    # Adam with lr * k/(k+1) and betas ** (k/(k+1)); NaN and Inf gradients sanitised first
    o = micro_config().optim
    o.update(b1=0.5, b2=0.99)
    tx = optim.lazy_regularized_adam(o, 0.01, 4)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1.0, jnp.nan, jnp.inf])}
    updates, _ = tx.update(grads, tx.init(params), params)
    ratio = 4 / 5
    expected, _ = optax.adam(0.01 * ratio, 0.5**ratio, 0.99**ratio).update(
        {"w": jnp.array([1.0, 0.0, 1e5])}, optax.adam(0.01).init(params), params
    )
    np.testing.assert_allclose(updates["w"], expected["w"], rtol=1e-6)


def test_ema_half_life_with_ramp_up(micro):
    experiment, state, _ = micro
    t = experiment.config.train
    zeros = jax.tree.map(jnp.zeros_like, state.nets["g"].params)
    ones = jax.tree.map(jnp.ones_like, state.nets["g"].params)
    for step in (0, 1, 10, 1000):
        before = state.replace(step=jnp.int32(step), nets={**state.nets, "g": state.nets["g"].replace(params=zeros)})
        after = experiment.method.end_of_step(before.replace(ema={**before.ema, "params": ones}))
        ema_nimg = min(t.ema_kimg * 1000, step * t.batch_size * t.ema_rampup)
        beta = 0.5 ** (t.batch_size / max(ema_nimg, 1e-8))  # the EMA keeps beta of the old value
        np.testing.assert_allclose(jax.tree.leaves(after.ema["params"])[0], beta, rtol=1e-5, atol=1e-30)
        assert after.ema["w_avg"] is state.nets["g"].collections["w_avg"]  # buffers copied


def test_style_mixing_takes_the_layers_after_one_cutoff_from_a_second_latent(micro):
    experiment, state, _ = micro
    losses = experiment.method.phases[0].loss.__self__
    g = state.nets["g"]
    latents = losses.sample_latents(jax.random.key(1), 4)

    def mixed(prob, rng):
        apply = Apply(losses.generator, g.params, g.collections)
        return jax.device_get(dataclasses.replace(losses, style_mixing_prob=prob).mixed_ws(apply, latents, rng))

    plain = mixed(0.0, jax.random.key(2))
    assert np.allclose(plain, plain[:, :1])  # one w broadcast to every layer
    cutoffs = set()
    for seed in range(12):
        ws = mixed(1.0, jax.random.key(seed))
        same = np.isclose(ws, plain).all(axis=(0, 2))
        cutoff = int(np.argmin(same))
        assert same[:cutoff].all() and not same[cutoff:].any() and 1 <= cutoff < losses.num_ws
        cutoffs.add(cutoff)
    assert len(cutoffs) > 1


def test_every_training_call_of_g_moves_w_avg_and_the_d_phase_changes_no_g_parameter(micro):
    experiment, state, batch = micro
    phases = {p.name: p for p in experiment.method.phases}
    _, out = phases["d"].loss(state.nets["d"].params, inputs_of(state, batch))
    (moved,), (before,) = (jax.tree.leaves(c["w_avg"]) for c in (out.collections["g"], state.nets["g"].collections))
    assert not np.allclose(moved, before)
    grads = jax.grad(
        lambda g: phases["d"].loss(
            state.nets["d"].params, inputs_of(state, batch, nets={**state.nets, "g": state.nets["g"].replace(params=g)})
        )[0]
    )(state.nets["g"].params)
    assert float(optax.tree.norm(grads)) == 0.0


def test_clr_routing_restoration_trains_d_only_reconstruction_g_only(micro):
    experiment, state, batch = micro
    phases = {p.name: p for p in experiment.method.phases}

    def term(phase, name, g_params, d_params):
        nets = {"g": state.nets["g"].replace(params=g_params), "d": state.nets["d"].replace(params=d_params)}
        trained = g_params if phase == "g" else d_params
        return phases[phase].loss(trained, inputs_of(state, batch, nets=nets))[1].metrics[name]

    g_params, d_params = state.nets["g"].params, state.nets["d"].params
    grad_g, grad_d = jax.grad(functools.partial(term, "d", "d_clr"), argnums=(0, 1))(g_params, d_params)
    assert float(optax.tree.norm(grad_g)) == 0.0 and float(optax.tree.norm(grad_d)) > 0
    grad_g, grad_d = jax.grad(functools.partial(term, "g", "g_rec"), argnums=(0, 1))(g_params, d_params)
    assert float(optax.tree.norm(grad_d)) == 0.0 and float(optax.tree.norm(grad_g)) > 0


def test_path_length_mean_moves_by_its_decay(micro):
    experiment, state, batch = micro
    g_reg = {p.name: p for p in experiment.method.phases}["g_reg"]
    _, out = g_reg.loss(state.nets["g"].params, inputs_of(state, batch))
    pl_mean = float(out.aux["pl_mean"])  # from 0: decay * mean path length
    assert pl_mean > 0 and np.isclose(pl_mean, float(out.metrics["pl_mean"]))
    assert float(out.metrics["g_pl"]) > 0


@pytest.mark.slow
def test_one_and_eight_devices_train_alike_and_a_restored_state_resumes_bitwise(tmp_path):
    """Four steps on 1 device, on 8, and on 1 with a save and restore after step 2: the 8-device run agrees with
    the 1-device one, the restored run equals it bitwise (w_avg, noise buffers, the path-length mean and both
    optimizers included). With both regularisers every 2 steps, every phase runs and only 2 variants compile."""
    config = micro_config(**{"train.g_reg_interval": 2, "train.d_reg_interval": 2})
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 8, 3), dtype=np.uint8)
    experiments, steps = {}, {}

    def run(mesh, start=0, stop=4, state=None):
        if mesh.size not in experiments:
            experiments[mesh.size] = build.build(config, mesh.size)
            steps[mesh.size] = build.train_step_fn(experiments[mesh.size], mesh)
        experiment = experiments[mesh.size]
        state = build.initial_state(experiment, mesh) if state is None else state
        history = []
        for i in range(start, stop):
            batch = train.step_batch({"image": images[i], "label": np.zeros(8, np.int32)}, 1, mesh)
            state, metrics = steps[mesh.size](state, batch, experiment.method.active_phases(i))
            history.append(jax.device_get(metrics))
        return state, history

    one, eight = sharding.make_mesh(jax.devices()[:1]), sharding.make_mesh(jax.devices())
    state1, history1 = run(one)
    state8, history8 = run(eight)
    for m1, m8 in zip(history1, history8):
        for name in m1:
            np.testing.assert_allclose(m8[name], m1[name], rtol=2e-4, atol=2e-5, err_msg=name)
    state1, state8 = jax.device_get(state1), jax.device_get(state8)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(state1), jax.tree.leaves(state8)):
        if not jax.tree_util.keystr(path).endswith(BIASES_BEFORE_BATCHNORM):
            np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=jax.tree_util.keystr(path))

    halfway, _ = run(one, stop=2)
    checkpointer = checkpoints.Checkpointer(str(tmp_path), None)
    checkpointer.save(2, halfway, config)
    checkpointer.close()
    restored = restore_state(config, str(tmp_path), 2)
    resumed, _ = run(one, start=2, state=jax.device_put(restored, jax.tree.map(lambda x: x.sharding, halfway)))
    assert float(state1.aux["pl_mean"]) > 0 and "w_avg" in state1.ema
    assert_trees_equal(state1, jax.device_get(resumed))
