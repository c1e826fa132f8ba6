"""Full StyleGAN2 G and D with official weights against the official code (tests/data/stylegan2_networks.npz).

net32: unconditional, G 'skip' (2 mapping layers), D 'resnet' (CLR-GAN's D, mbstd group 2).
net64: conditional (3 classes), G 'resnet' with conv_clamp 256, D 'skip' with the cmap mapping.
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import load_fixture, nhwc, state_dict

from clr_gan_jax.models.stylegan2 import Discriminator, Generator
from clr_gan_jax.models.stylegan2.official_weights import (
    discriminator_from_official_kwargs,
    discriminator_variables,
    generator_from_official_kwargs,
    generator_variables,
)

REF = load_fixture("stylegan2_networks.npz")
NETS = ["net32", "net64"]
GENERATE = {"net32": ([(0, 1.0), (1, 1.0), (0, 0.7)], None), "net64": ([(0, 1.0), (0, 0.7)], 1)}


def assert_close(actual, expected, tol=2e-5):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * max(1.0, float(np.abs(expected).max())))


class Net:
    """One fixture network: G and D built from the official init kwargs, with the official weights."""

    def __init__(self, name):
        self.name = name
        self.G = generator_from_official_kwargs(json.loads(str(REF[f"{name}/G/init_kwargs"])))
        self.D = discriminator_from_official_kwargs(json.loads(str(REF[f"{name}/D/init_kwargs"])))
        self.g_vars = generator_variables(self.G, state_dict(REF, f"{name}/G"))
        self.d_vars = discriminator_variables(self.D, state_dict(REF, f"{name}/D"))
        self.z = REF[f"{name}/z"]
        self.labels = REF[f"{name}/labels"] if self.G.c_dim else None
        static = ("noise_mode", "train", "update_w_avg", "mutable", "truncation_cutoff", "method")
        self.apply_g = jax.jit(self.G.apply, static_argnames=static)
        self.apply_d = jax.jit(self.D.apply)


@functools.cache
def get_net(name) -> Net:
    return Net(name)


@pytest.fixture(params=NETS)
def net(request):
    return get_net(request.param)


def test_mapping_and_truncation(net):
    ws = net.apply_g(net.g_vars, net.z, net.labels, method="mapping")
    assert ws.shape == (2, Generator.num_ws_for(net.G.img_resolution), net.G.w_dim)
    assert_close(ws, REF[f"{net.name}/ws"])
    psi = np.float32(0.7)
    truncated = net.apply_g(net.g_vars, net.z, net.labels, truncation_psi=psi, truncation_cutoff=3, method="mapping")
    assert_close(truncated, REF[f"{net.name}/ws_psi07_cutoff3"])
    np.testing.assert_array_equal(truncated[:, 3:], ws[:, 3:])


def test_generator_inference_is_fused_and_matches(net):
    images = net.apply_g(net.g_vars, net.z, net.labels, noise_mode="const")
    assert images.dtype == jnp.float32
    assert_close(images, nhwc(REF[f"{net.name}/img_eval"]))


def test_generator_official_generate_images(net):
    """generate.py: z = RandomState(seed).randn(1, z_dim), images to uint8; at most 1 level from the official.

    All seeds run as one batch with one truncation psi per sample (G treats the samples independently).
    """
    cases, class_idx = GENERATE[net.name]
    z = np.concatenate([np.random.RandomState(seed).randn(1, net.G.z_dim) for seed, _ in cases]).astype(np.float32)
    psi = np.array([psi for _, psi in cases], np.float32)[:, None, None]
    labels = None if class_idx is None else np.full(len(cases), class_idx, np.int32)
    images = net.apply_g(net.g_vars, z, labels, truncation_psi=psi, noise_mode="const")
    images = np.asarray(jnp.clip(images * 127.5 + 128, 0, 255).astype(jnp.uint8))
    for (seed, psi), image in zip(cases, images):
        expected = REF[f"{net.name}/generate/seed{seed}_psi{psi}"]
        assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1


def test_discriminator_logits_and_clr_features(net):
    """CLR-GAN's D returns (logits, latent_code): latent_code is our "features"."""
    images = nhwc(REF[f"{net.name}/img_eval"])
    if f"{net.name}/img_eval_psi05" in REF:
        images = np.concatenate([images, nhwc(REF[f"{net.name}/img_eval_psi05"])])
    labels = None if net.labels is None else np.tile(net.labels, len(images) // 2)
    out = net.apply_d(net.d_vars, images, labels)
    assert_close(out["logits"], REF[f"{net.name}/logits"])
    assert_close(out["features"], REF[f"{net.name}/latent_code"])
    assert sorted(out["blocks"]) == [2**i for i in range(2, int(np.log2(net.D.img_resolution)))]
    for res, features in out["blocks"].items():
        assert features.shape[:3] == (len(images), res, res)


def test_generator_training_call_and_w_avg_update():
    """Train mode: non-fused modulated convs; w_avg <- mean(w) + 0.995 (w_avg - mean(w)) when asked and mutable."""
    net = get_net("net32")
    assert_close(net.g_vars["w_avg"]["mapping_network"]["w_avg"], REF["net32/w_avg_before"])
    images = net.apply_g(net.g_vars, net.z, train=True, noise_mode="const")
    assert_close(images, nhwc(REF["net32/img_train"]))

    def mapping(update_w_avg, mutable):
        return net.apply_g(net.g_vars, net.z, update_w_avg=update_w_avg, mutable=mutable, method="mapping")

    _, updated = mapping(True, ("w_avg",))
    assert_close(updated["w_avg"]["mapping_network"]["w_avg"], REF["net32/w_avg_after"])
    _, unchanged = mapping(False, ("w_avg",))
    np.testing.assert_array_equal(unchanged["w_avg"]["mapping_network"]["w_avg"], REF["net32/w_avg_before"])
    assert_close(mapping(True, False), REF["net32/ws"])  # an immutable w_avg is left alone


def test_truncated_images():
    net = get_net("net32")
    images = net.apply_g(net.g_vars, net.z, truncation_psi=np.float32(0.5), noise_mode="const")
    assert_close(images, nhwc(REF["net32/img_eval_psi05"]))


def test_bfloat16_blocks_are_close_to_float32():
    """compute_dtype=bfloat16 in the top 2 blocks (the official fp16 blocks, clamp 256); params and images float32."""
    net = get_net("net32")
    G = net.G.clone(compute_dtype=jnp.bfloat16, num_fp16_res=2, conv_clamp=256)
    D = net.D.clone(compute_dtype=jnp.bfloat16, num_fp16_res=2, conv_clamp=256)
    images = jax.jit(lambda v, z: G.apply(v, z, noise_mode="const"))(net.g_vars, net.z)
    assert images.dtype == jnp.float32
    reference = nhwc(REF["net32/img_eval"])
    np.testing.assert_allclose(images, reference, atol=0.05 * np.abs(reference).max())
    out = jax.jit(D.apply)(net.d_vars, reference)
    assert out["blocks"][16].dtype == jnp.bfloat16 and out["blocks"][4].dtype == jnp.float32
    assert out["logits"].dtype == jnp.float32
    np.testing.assert_allclose(out["logits"], REF["net32/logits"][:2], atol=0.05 * np.abs(REF["net32/logits"]).max())


def random_variables(module, *args, seed=0, **kwargs):
    """Variables of ``module`` with N(0, 1) leaves drawn by NumPy (no init compile)."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


def test_r1_penalty_gradient_through_discriminator():
    """d/dparams of sum |d logits / d images|^2 is finite and matches a central difference on one parameter."""
    D = Discriminator(img_resolution=16, channel_base=64, channel_max=8, mbstd_group_size=2)
    images = jnp.asarray(np.random.default_rng(1).standard_normal((2, 16, 16, 3)), jnp.float32)
    params = random_variables(D, images)["params"]

    def r1(params):
        grads = jax.grad(lambda x: D.apply({"params": params}, x)["logits"].sum())(images)
        return jnp.sum(jnp.square(grads))

    value_and_grad = jax.jit(jax.value_and_grad(r1))
    value, grads = value_and_grad(params)
    assert np.isfinite(float(value)) and all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    eps = 1e-3  # small enough not to cross an lrelu kink here (checked in float64)
    probe = ("b16", "conv0", "kernel")

    def perturbed(delta):
        kernel = params["b16"]["conv0"]["kernel"]
        changed = {**params, "b16": {**params["b16"], "conv0": {**params["b16"]["conv0"]}}}
        changed["b16"]["conv0"]["kernel"] = kernel.at[1, 1, 0, 0].add(delta)
        return float(value_and_grad(changed)[0])

    finite_difference = (perturbed(eps) - perturbed(-eps)) / (2 * eps)
    analytic = float(grads[probe[0]][probe[1]][probe[2]][1, 1, 0, 0])
    assert abs(analytic) > 1e-3 * float(value)
    np.testing.assert_allclose(analytic, finite_difference, rtol=2e-2)


def test_path_length_gradient_through_generator():
    """d/dparams of |d sum(G.synthesis(ws) * y) / d ws|^2 (the path-length penalty) is finite and non-zero."""
    G = Generator(img_resolution=8, z_dim=8, w_dim=8, mapping_layers=1, channel_base=32, channel_max=4)
    ws = jnp.asarray(np.random.default_rng(2).standard_normal((2, G.num_ws_for(8), 8)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(3).standard_normal((2, 8, 8, 3)), jnp.float32)
    variables = random_variables(G, ws[:, 0], noise_mode="const")

    def path_length(params):
        def image_dot_y(ws):
            images = G.apply({**variables, "params": params}, ws, train=True, noise_mode="const", method="synthesis")
            return jnp.sum(images * y)

        return jnp.sum(jnp.square(jax.grad(image_dot_y)(ws)))

    grads = jax.jit(jax.grad(path_length))(variables["params"])
    leaves = jax.tree.leaves(grads)
    assert all(np.isfinite(g).all() for g in leaves)
    assert float(jnp.abs(grads["synthesis_network"]["b8"]["conv0"]["kernel"]).max()) > 0
