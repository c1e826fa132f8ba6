"""EigenGAN: orthonormal bases at init, the subspace map and the orthogonality penalty against hand computations,
which parameters the penalty trains, the z layout the traverse picture sweeps, a few steps of its config with CLR,
and the zoo's FFHQ networks built (shapes only)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import load_config_file, train_steps

from clr_gan_jax import build, traverse
from clr_gan_jax.latents import rows_latents
from clr_gan_jax.models.eigengan import EigenGANGenerator, Subspace, orthogonality_penalty

G = EigenGANGenerator(resolution=16, channels=1, width=8, basis=3)  # 2 layers of 3 coordinates, then 4 noise
Z = jax.random.normal(jax.random.key(0), (2, 2 * 3 + 4))


@pytest.fixture(scope="module")
def g_params():
    return jax.jit(G.init)(jax.random.key(1), Z)["params"]


def test_bases_start_orthonormal_and_the_penalty_is_the_weighted_sum_of_mean_squared_gram_errors(g_params):
    bases = [np.asarray(g_params[f"block_{i}"]["subspace"]["U"]) for i in range(2)]
    assert [u.shape for u in bases] == [(3, 4 * 4 * 4), (3, 8 * 8 * 8)]  # the block's input map: 4x4x4, 8x8x8
    for u in bases:
        np.testing.assert_allclose(u @ u.T, np.eye(3), atol=1e-5)
    penalty = jax.jit(jax.value_and_grad(lambda p: orthogonality_penalty(p, 2.0)["g_ortho"]))
    assert float(penalty(g_params)[0]) < 1e-9
    moved = jax.tree.map(lambda x: x, g_params)
    skewed = [u + 0.1 * np.random.default_rng(i).normal(size=u.shape) for i, u in enumerate(bases)]
    for i, u in enumerate(skewed):
        moved[f"block_{i}"]["subspace"]["U"] = jnp.asarray(u, jnp.float32)
    expected = 2.0 * sum(np.mean((u @ u.T - np.eye(3)) ** 2) for u in skewed)
    value, grads = penalty(moved)
    assert float(value) == pytest.approx(expected, rel=1e-4)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):  # it trains the bases U only
        assert (float(optax.tree.norm(grad)) > 1e-3) == jax.tree_util.keystr(path).endswith("['U']")


def test_subspace_point_is_importance_weighted_coordinates_times_the_basis_plus_the_origin():
    layer = Subspace(basis=2, dim=3)
    params = {"U": jnp.array([[1.0, 2, 3], [0, -1, 4]]), "L": jnp.array([2.0, 0.5]), "mu": jnp.array([0.1, 0.2, 0.3])}
    z = jnp.array([[1.0, 2.0]])
    expected = (np.array([1.0, 2.0]) * [2.0, 0.5]) @ np.asarray(params["U"]) + [0.1, 0.2, 0.3]
    np.testing.assert_allclose(layer.apply({"params": params}, z), [expected], rtol=1e-6)


def test_z_holds_each_layers_coordinates_then_the_noise(g_params):
    """Coordinate (layer i, dim d) is z[:, 3 i + d]: zeroing a layer's importance L makes G blind to exactly those."""
    blind = jax.tree.map(lambda x: x, g_params)
    blind["block_1"]["subspace"]["L"] = jnp.zeros(3)
    apply = jax.jit(G.apply)
    out = apply({"params": blind}, Z)
    assert out.shape == (2, 16, 16, 1)
    for index, changes in ((0, True), (2, True), (3, False), (5, False), (6, True), (9, True)):
        moved = apply({"params": blind}, Z.at[:, index].add(1.0))
        assert bool(jnp.any(moved != out)) == changes, index
    rows = G.traversal(4, jnp.linspace(-3.0, 3.0, 4))
    assert len(rows) == 2 * 3
    swept = np.asarray(rows_latents({"z": Z}, rows)["z"]).reshape(6, 4, 10)
    for r in range(6):
        others = np.delete(swept[r], r, axis=1)
        np.testing.assert_array_equal(others, np.tile(np.delete(np.asarray(Z[0]), r), (4, 1)))
        np.testing.assert_allclose(swept[r][:, r], [-3, -1, 1, 3], rtol=1e-6)


def test_eigengan_clr_trains_with_hinge_and_the_orthogonality_term_and_has_a_row_per_coordinate():
    config = load_config_file("configs/eigengan.py", "digits_clr")
    config.data.resolution = 8
    config.model.update(eigen_basis=2, z_dim=2 + 4, g_width=8, d_width=8)
    config.train.batch_size = 8
    config.loss.r1_gamma = 0.0  # R1's second-order compile is the zoo loop's, tested elsewhere
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 1), dtype=np.uint8)
    _, (first, *_, metrics) = train_steps(config, images, np.zeros(8, np.int32))
    assert {"d_adv", "d_clr", "g_adv", "g_rec", "g_ortho"} <= set(metrics)
    assert float(first["d_adv"]) == pytest.approx(2.0, abs=0.05)  # hinge at D ~ 0: relu(1 - 0) + relu(1 + 0)
    assert all(np.isfinite(float(v)) for v in metrics.values()) and 0 < float(metrics["g_ortho"]) < 1e-3
    rows = traverse.traversal_rows(build.build(config, 1), columns=5, span=3.0)
    assert [(row.key, row.start, row.values.shape) for row in rows] == [("z", 0, (5, 1)), ("z", 1, (5, 1))]


def test_the_zoos_ffhq_networks_build():
    experiment = build.build(load_config_file("configs/eigengan.py", "ffhq_clr"), 1, example_shape=(256, 256, 3))
    shapes = jax.eval_shape(experiment.method.init_variables, jax.random.key(0))
    g, d = shapes["g"]["params"], shapes["d"]["params"]
    assert [g[f"block_{i}"]["subspace"]["U"].shape[0] for i in range(6)] == [6] * 6
    assert g["block_0"]["subspace"]["U"].shape[1] == 4 * 4 * 512 and g["Dense_0"]["kernel"].shape == (512, 16 * 512)
    assert g["block_5"]["ConvTranspose_2"]["kernel"].shape[-1] == 16 and d["Conv_0"]["kernel"].shape[-1] == 16
    assert d["Dense_0"]["kernel"].shape == (4 * 4 * 512, 512) and d["phi"]["kernel"].shape == (512, 548)
