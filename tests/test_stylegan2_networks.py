"""Full StyleGAN2 G and D with official weights against the official code (tests/data/stylegan2_networks.npz).

net32: unconditional, G 'skip' (2 mapping layers), D 'resnet' (CLR-GAN's D, mbstd group 2).
net64: conditional (3 classes), G 'resnet' with conv_clamp 256, D 'skip' with the cmap mapping.
The parity tests use XLA's convolutions (they compile faster); the CPU default, the "matmul" implementation, is
checked on net64 and in the second-order gradient tests (test_stylegan2_ops.py tests the two equal op by op).
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, load_fixture, nhwc, state_dict

from clr_gan_jax.errors import UserError
from clr_gan_jax.models.stylegan2 import Discriminator, Generator, build, ops
from clr_gan_jax.models.stylegan2.official_weights import (
    discriminator_from_official_kwargs,
    discriminator_variables,
    generator_from_official_kwargs,
    generator_variables,
)

REF = load_fixture("stylegan2_networks.npz")
NETS = ["net32", "net64"]
GENERATE = {"net32": ([(0, 1.0), (1, 1.0), (0, 0.7)], None), "net64": ([(0, 1.0), (0, 0.7)], 1)}


class Net:
    """One fixture network: G and D built from the official init kwargs, with the official weights, applied with
    jitted functions traced under one ops implementation."""

    def __init__(self, name, implementation):
        self.name, self.implementation = name, implementation
        self.G = generator_from_official_kwargs(json.loads(str(REF[f"{name}/G/init_kwargs"])))
        self.D = discriminator_from_official_kwargs(json.loads(str(REF[f"{name}/D/init_kwargs"])))
        self.g_vars = generator_variables(self.G, state_dict(REF, f"{name}/G"))
        self.d_vars = discriminator_variables(self.D, state_dict(REF, f"{name}/D"))
        self.z = REF[f"{name}/z"]
        self.labels = REF[f"{name}/labels"] if self.G.c_dim else None
        static = ("noise_mode", "train", "update_w_avg", "mutable", "truncation_cutoff", "method")
        self._apply_g = jax.jit(self.G.apply, static_argnames=static)
        self._apply_d = jax.jit(self.D.apply)

    def apply_g(self, *args, **kwargs):
        with ops.implementation(self.implementation):
            return self._apply_g(*args, **kwargs)

    def apply_d(self, *args, **kwargs):
        with ops.implementation(self.implementation):
            return self._apply_d(*args, **kwargs)


@functools.cache
def get_net(name, implementation="conv") -> Net:
    return Net(name, implementation)


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


def discriminator_inputs(net):
    images = nhwc(REF[f"{net.name}/img_eval"])
    if f"{net.name}/img_eval_psi05" in REF:
        images = np.concatenate([images, nhwc(REF[f"{net.name}/img_eval_psi05"])])
    return images, None if net.labels is None else np.tile(net.labels, len(images) // 2)


def test_discriminator_logits_and_clr_features(net):
    """CLR-GAN's D returns (logits, latent_code): latent_code is our "features"."""
    images, labels = discriminator_inputs(net)
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


def test_matmul_implementation_matches_the_official_networks():
    """The CPU default on net64: upsampling convs (overlap-add), im2col, shifted-slice FIR, grouped (fused) convs."""
    net = get_net("net64", "matmul")
    assert_close(net.apply_g(net.g_vars, net.z, net.labels, noise_mode="const"), nhwc(REF["net64/img_eval"]))
    assert_close(net.apply_d(net.d_vars, *discriminator_inputs(net))["logits"], REF["net64/logits"])


def test_bfloat16_blocks_are_close_to_float32():
    """compute_dtype=bfloat16 in the top 2 blocks (the official fp16 blocks, clamp 256); params and images float32.

    With XLA's convolutions, the implementation GPUs and TPUs (where bfloat16 is meant to run) use.
    """
    net = get_net("net32")
    G = net.G.clone(compute_dtype=jnp.bfloat16, num_fp16_res=2, conv_clamp=256)
    D = net.D.clone(compute_dtype=jnp.bfloat16, num_fp16_res=2, conv_clamp=256)
    reference = nhwc(REF["net32/img_eval"])
    with ops.implementation("conv"):
        images = jax.jit(lambda v, z: G.apply(v, z, noise_mode="const"))(net.g_vars, net.z)
        out = jax.jit(D.apply)(net.d_vars, reference)
    assert images.dtype == jnp.float32
    np.testing.assert_allclose(images, reference, atol=0.05 * np.abs(reference).max())
    assert out["blocks"][16].dtype == jnp.bfloat16 and out["blocks"][4].dtype == jnp.float32
    assert out["logits"].dtype == jnp.float32
    np.testing.assert_allclose(out["logits"], REF["net32/logits"][:2], atol=0.05 * np.abs(REF["net32/logits"]).max())


def random_variables(module, *args, seed=0, **kwargs):
    """Variables of ``module`` with N(0, 1) leaves drawn by NumPy (no init compile)."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


@pytest.fixture
def matmul_implementation():
    with ops.implementation("matmul"):
        yield


@pytest.mark.usefixtures("matmul_implementation")
def test_r1_penalty_gradient_through_discriminator():
    """d/dparams of sum |d logits / d images|^2 is finite and matches a central difference on one parameter.

    With the "matmul" implementation, whose second derivatives are not XLA's own convolution rules.
    """
    D = Discriminator(img_resolution=8, channel_base=32, channel_max=8, mbstd_group_size=2)
    images = jnp.asarray(np.random.default_rng(1).standard_normal((2, 8, 8, 3)), jnp.float32)
    params = random_variables(D, images)["params"]

    def r1(params):
        grads = jax.grad(lambda x: D.apply({"params": params}, x)["logits"].sum())(images)
        return jnp.sum(jnp.square(grads))

    value_and_grad = jax.jit(jax.value_and_grad(r1))
    value, grads = value_and_grad(params)
    assert np.isfinite(float(value)) and all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    kernel_grad = np.asarray(grads["b8"]["conv0"]["kernel"])
    index = np.unravel_index(np.argmax(np.abs(kernel_grad)), kernel_grad.shape)  # the most sensitive weight
    eps = 1e-3  # small enough not to cross an lrelu kink here (checked in float64)

    def perturbed(delta):
        changed = jax.tree.map(lambda a: a, params)
        changed["b8"]["conv0"]["kernel"] = params["b8"]["conv0"]["kernel"].at[index].add(delta)
        return float(value_and_grad(changed)[0])

    finite_difference = (perturbed(eps) - perturbed(-eps)) / (2 * eps)
    assert abs(kernel_grad[index]) > 1e-2 * float(value)
    np.testing.assert_allclose(kernel_grad[index], finite_difference, rtol=1e-2)


@pytest.mark.usefixtures("matmul_implementation")
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


def test_user_mistakes_raise_user_errors():
    G = Generator(img_resolution=8, z_dim=4, w_dim=4, c_dim=3, mapping_layers=1, channel_base=16, channel_max=4)
    z = jnp.zeros((2, 4))
    variables = random_variables(G, z, jnp.zeros(2, jnp.int32), noise_mode="const")
    with pytest.raises(UserError, match=r"conditional \(c_dim=3\): pass labels"):
        G.apply(variables, z)
    with pytest.raises(UserError, match="int class ids of shape"):
        G.apply(variables, z, jnp.zeros((2, 3)))
    with pytest.raises(UserError, match=r"z must have shape \(N, 4\)"):
        G.apply(variables, jnp.zeros((2, 5)), jnp.zeros(2, jnp.int32))
    with pytest.raises(UserError, match=r"ws must have shape \(N, 4, 4\)"):
        G.apply(variables, jnp.zeros((2, 3, 4)), method="synthesis")
    with pytest.raises(UserError, match="noise_mode must be one of"):
        G.apply(variables, z, jnp.zeros(2, jnp.int32), noise_mode="fixed")
    with pytest.raises(UserError, match="power-of-two image resolution"):
        Generator(img_resolution=48).init(jax.random.key(0), jnp.zeros((1, 512)))
    with pytest.raises(UserError, match="architecture must be one of"):
        Discriminator(img_resolution=8, architecture="unet").init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(UserError, match=r"images must have shape \(N, 8, 8, 3\)"):
        Discriminator(img_resolution=8).init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(UserError, match="heads must have distinct names"):
        Discriminator(img_resolution=8, heads=(("logits", 2),)).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def test_build_official_cifar_configuration():
    """build() with the official 'cifar' cfg: 512 channels everywhere at 32 px, so phi (512) fits z_dim (512)."""
    G, D = build((32, 32, 3), 10, mapping_layers=2, d_architecture="orig", mbstd_group_size=32, d_heads=[["aux", 10]])
    z, labels = jnp.zeros((2, 512)), jnp.zeros(2, jnp.int32)
    images = jax.eval_shape(lambda: G.init_with_output(jax.random.key(0), z, labels, noise_mode="const")[0])
    assert images.shape == (2, 32, 32, 3) and G.num_ws_for(32) == 8
    out = jax.eval_shape(lambda: D.init_with_output(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), labels)[0])
    assert out["features"].shape == (2, 512) and out["aux"].shape == (2, 10) and out["logits"].shape == (2,)
    with pytest.raises(UserError, match="square images"):
        build((32, 16, 3))
    with pytest.raises(UserError, match="compute_dtype must be one of"):
        build((32, 32, 3), compute_dtype="float16")
