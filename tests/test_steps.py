"""The jitted train step: data parallel over 8 CPU devices equals 1 device; EMA and step bookkeeping."""

import functools

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from clr_gan_jax import sharding, steps
from clr_gan_jax.default_config import base_config
from clr_gan_jax.train import create_gan, create_state


def tiny_image_config() -> ConfigDict:
    c = base_config()
    c.data.resolution = 8
    c.model.update(z_dim=8, g_width=16, d_width=16)
    c.loss.r1_gamma = 1.0  # exercise every term: adversarial, R1, restoration, reconstruction
    c.train.update(batch_size=16, n_critic=2, ema_decay=0.9)
    return c


def run_steps(config, devices, reals, num_steps):
    mesh = sharding.make_mesh(devices)
    gan = create_gan(config)
    state = create_state(gan, config, mesh)
    step = jax.jit(functools.partial(steps.train_step, gan, sharding=sharding.batch_sharded(mesh)), donate_argnums=0)
    history = []
    for i in range(num_steps):
        state, metrics = step(state, sharding.put_batch(reals[i], mesh, batch_dim=1))
        history.append(jax.device_get(metrics))
    return jax.device_get(state), history


@pytest.fixture(scope="module")
def one_vs_eight():
    assert len(jax.devices()) == 8, "conftest.py forces 8 CPU devices"
    config = tiny_image_config()
    reals = np.random.default_rng(0).integers(0, 256, (3, 2, 16, 8, 8, 1), dtype=np.uint8)
    return run_steps(config, jax.devices()[:1], reals, 3), run_steps(config, jax.devices(), reals, 3)


# A bias feeding straight into BatchNorm (here G's first layer, as in the zoo's PyTorch model) has a
# mathematically zero gradient; Adam turns its rounding noise into lr-sized random steps, so it
# differs between device counts while changing no output (the running mean of the BatchNorm after it
# absorbs the same difference). Everything else must agree.
BIASES_BEFORE_BATCHNORM = ("['Project_0']['bias']", "['BatchNorm_0']['mean']")


def test_eight_devices_match_one(one_vs_eight):
    (state1, history1), (state8, history8) = one_vs_eight
    for m1, m8 in zip(history1, history8):
        assert m1.keys() == m8.keys() >= {"d_adv", "d_r1", "d_clr", "g_adv", "g_rec", "d_loss", "g_loss"}
        for name in m1:
            np.testing.assert_allclose(m8[name], m1[name], rtol=1e-5, atol=1e-5, err_msg=name)
    compared = 0
    for (path, p1), p8 in zip(jax.tree_util.tree_leaves_with_path(state1), jax.tree.leaves(state8)):
        name = jax.tree_util.keystr(path)
        if not name.endswith(BIASES_BEFORE_BATCHNORM):
            np.testing.assert_allclose(p8, p1, rtol=1e-5, atol=1e-5, err_msg=name)
            compared += 1
    assert compared > 40
    config = tiny_image_config()
    generate = steps.make_generate(create_gan(config).generator)
    z = jax.random.normal(jax.random.key(0), (4, config.model.z_dim))
    np.testing.assert_allclose(generate(state8.ema, z), generate(state1.ema, z), atol=1e-5)


def test_step_counts_g_updates_and_ema_trails_g(one_vs_eight):
    (state, _), _ = one_vs_eight
    assert int(state.step) == 3
    initial = jax.device_get(create_state(create_gan(tiny_image_config()), tiny_image_config(), sharding.make_mesh(jax.devices()[:1])))
    g0, g, ema = (jax.tree.leaves(s) for s in (initial.g.params, state.g.params, state.ema["params"]))
    moved = [np.abs(e - a).max() > 0 and np.abs(e - b).max() > 0 for a, b, e in zip(g0, g, ema)]
    assert all(moved)  # the EMA lies strictly between the initial and the current weights
    np.testing.assert_array_equal(state.ema["batch_stats"]["BatchNorm_0"]["mean"], state.g.batch_stats["BatchNorm_0"]["mean"])


def test_reused_fakes_equal_a_g_update_on_the_last_d_latents():
    """train.reuse_fakes: the G update through the VJP kept from the last D update's G(z) pass equals a
    G update that recomputes G on those latents after the D update (G has not changed in between)."""
    config = tiny_image_config()
    config.train.reuse_fakes = True
    gan = create_gan(config)
    state = create_state(gan, config, sharding.make_mesh(jax.devices()[:1]))
    reals = np.random.default_rng(1).integers(0, 256, (2, 16, 8, 8, 1), dtype=np.uint8)

    def recomputed(state, reals):
        rng = jax.random.fold_in(jax.random.key(gan.seed), state.step)
        for i in range(gan.n_critic):
            z = steps.sample_latents(gan, jax.random.fold_in(rng, i), reals.shape[1])
            state, _ = steps.d_step(gan, state, reals[i], steps.generate(gan, state.g, z)[0], z)
        return steps.g_step(gan, state, reals[-1], *steps.generate(gan, state.g, z))

    (reused, m_reused), (expected, m_expected) = (
        jax.device_get(jax.jit(f)(state, reals)) for f in (functools.partial(steps.train_step, gan), recomputed)
    )
    for name in m_expected:
        np.testing.assert_allclose(m_reused[name], m_expected[name], rtol=1e-5, err_msg=name)
    for got, want in zip(jax.tree.leaves(reused.g), jax.tree.leaves(expected.g)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    fresh, _ = jax.device_get(jax.jit(functools.partial(steps.train_step, create_gan(tiny_image_config())))(state, reals))
    assert not np.allclose(fresh.g.params["UpConv_0"]["kernel"], reused.g.params["UpConv_0"]["kernel"])
