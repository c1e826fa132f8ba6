"""GLeaD (+GGDR) on StyleGAN2: D's decoder and heads, G's upper blocks as a decoder, the plugin's terms and
their routing (D only), the configs, a few training steps of the tiny preset and their bitwise resumption."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, assert_trees_equal, load_config_file, load_fixture, nhwc, state_dict

from clr_gan_jax import build, checkpoints, npz, sharding, train
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods import PhaseInputs
from clr_gan_jax.metrics import convert_lpips, lpips
from clr_gan_jax.models import stylegan2
from clr_gan_jax.models.stylegan2 import official_weights
from clr_gan_jax.models.stylegan2.discriminator import Decoder
from clr_gan_jax.models.stylegan2.layers import block_channels
from clr_gan_jax.objectives import PLUGINS, glead

PAPER256 = {"channel_base": 16384, "channel_max": 512}  # fmaps 0.5
SMALL = {"channel_base": 256, "channel_max": 32}  # 32 channels up to 8 px, 16 at 16, 8 at 32


def d_outputs(resolution, decoder, batch=2, **kwargs):
    """Shapes of D's outputs (nothing computed) with GLeaD's decoder (resolution, feature resolution, w width)."""
    _, D = stylegan2.build((resolution, resolution, 3), d_decoder=decoder, **kwargs)
    images = jax.ShapeDtypeStruct((batch, resolution, resolution, 3), jnp.float32)
    variables = jax.eval_shape(D.init, jax.random.key(0), images)
    return variables, jax.eval_shape(D.apply, variables, images)


@pytest.mark.parametrize("res_g, feature_channels", [(64, 256), (32, 512)])  # FFHQ, LSUN
def test_decoder_and_heads_at_paper256(res_g, feature_channels):
    variables, out = d_outputs(256, (64, res_g, 512), **PAPER256)
    assert out["glead_image"].shape == (2, 64, 64, 3)
    assert out["glead_feature"].shape == (2, 64, 64, feature_channels)
    assert out["glead_w"].shape == (2, 512)
    decoder = variables["params"]["decoder"]
    kernels = {name: decoder[name]["kernel"].shape for name in decoder}
    assert kernels == {  # STYLEGAN2.md 13.1: (in, out) of b8..b64_dec and the heads, all 1x1
        "b8_dec": (1, 1, 512, 512),
        "b16_dec": (1, 1, 1024, 512),
        "b32_dec": (1, 1, 1024, 512),
        "b64_dec": (1, 1, 1024, 256),
        "img_proj": (1, 1, 256, 3),
        "feat_proj1": (1, 1, 256, feature_channels),
        "feat_proj2": (1, 1, 256, 512),
    }
    assert all(decoder[name]["bias"].shape == (kernels[name][-1],) for name in decoder)


def test_decoder_is_linear_in_the_block_features_at_tiny_size():
    """No nonlinearity and zero biases at init: scaling every D block output scales every head by the same factor;
    the 8x8 block reads D's 4x4 features, later ones their concatenation with D's block output at r/2."""
    _, D = stylegan2.build((32, 32, 3), d_decoder=(16, 8, 24), **SMALL)
    images = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(D.init)(jax.random.key(0), images)
    out = jax.jit(D.apply)(variables, images)
    assert out["glead_image"].shape == (2, 16, 16, 3)
    assert out["glead_feature"].shape == (2, 16, 16, block_channels(8, **SMALL))
    assert out["glead_w"].shape == (2, 24)
    module = Decoder(16, feature_channels=32, w_dim=24, img_channels=3, **SMALL)
    params, decode = {"params": variables["params"]["decoder"]}, jax.jit(module.apply)
    scaled = decode(params, {r: 3.0 * x for r, x in out["blocks"].items()})
    for name in ("glead_image", "glead_feature", "glead_w"):
        np.testing.assert_allclose(scaled[name], 3.0 * out[name], rtol=1e-4, atol=1e-5)
    bumped = decode(params, {**out["blocks"], 16: out["blocks"][16] + 1.0})
    np.testing.assert_allclose(bumped["glead_w"], out["glead_w"])  # 16x16 block output unused for decoder_res 16
    bumped = decode(params, {**out["blocks"], 8: out["blocks"][8] + 1.0})
    assert not np.allclose(bumped["glead_w"], out["glead_w"])


def test_decoder_settings_that_do_not_fit_raise_user_errors():
    for decoder in ((64, 16, 8), (4, 8, 8), (24, 8, 8), (16, 32, 8), (16, 8, 0)):
        with pytest.raises(UserError):
            stylegan2.build((32, 32, 3), d_decoder=decoder, **SMALL)


def test_synthesis_from_a_block_output_continues_the_full_synthesis():
    """G's blocks above 8 px, started from the 8x8 block output (returned by feature_res) and the 8x8 image of a
    G that stops there, give the full synthesis; ws for them are the full ws from index 3 (w_idx 0 for b16)."""
    G, _ = stylegan2.build((32, 32, 3), z_dim=16, w_dim=16, mapping_layers=1, **SMALL)
    G8, _ = stylegan2.build((8, 8, 3), z_dim=16, w_dim=16, mapping_layers=1, **SMALL)
    variables = jax.jit(G.init)(jax.random.key(0), jnp.zeros((1, 16)))
    lower = {  # b4 and b8 of the 32 px G (a ToRGB in every block: architecture 'skip')
        kind: {**tree, "synthesis_network": {b: tree["synthesis_network"][b] for b in ("b4", "b8")}}
        for kind, tree in variables.items()
        if "synthesis_network" in tree
    }
    ws = jax.random.normal(jax.random.key(1), (2, G.num_ws_for(32), 16))
    synthesis = jax.jit(functools.partial(G.apply, method="synthesis", noise_mode="const", feature_res=8))
    full, feature = synthesis(variables, ws)
    assert feature.shape == (2, 8, 8, block_channels(8, **SMALL))
    image8 = jax.jit(functools.partial(G8.apply, method="synthesis", noise_mode="const"))(
        {**variables, **lower}, ws[:, :4]
    )
    assert 2 * np.log2(32 / 8) + 1 == ws[:, 3:].shape[1]
    synthesis_from = jax.jit(functools.partial(G.apply, method="synthesis_from", noise_mode="const"))
    resumed = synthesis_from(variables, ws[:, 3:], feature, image8)
    np.testing.assert_allclose(resumed, full, rtol=1e-5, atol=1e-5)
    other = synthesis_from(variables, ws[:, 3:], feature + 0.1, image8)
    assert not np.allclose(other, full, atol=1e-3)
    with pytest.raises(UserError):  # one w too many
        G.apply(variables, ws[:, 2:], feature, image8, method="synthesis_from", noise_mode="const")


MICRO = {  # GLeaD at 16 px: D's decoder to 16 px, G decoding from its 8 px block (so the heads are resized)
    "data.resolution": 16,
    "model.z_dim": 16,
    "model.w_dim": 16,
    "model.mapping_layers": 1,
    "model.channel_base": 64,
    "model.channel_max": 16,
    "model.mbstd_group_size": 2,
    "train.batch_size": 4,
    "train.d_reg_interval": 1,
    "glead.res_g": 8,
    "glead.decoder_res": 16,
    "eval.metrics": "",
}


def micro_glead(variant="tiny_ggdr_clr", **overrides):
    config = load_config_file("configs/glead.py", variant)
    config.update_from_flattened_dict({**MICRO, **overrides})
    return config


def test_resize_halving_is_the_2x2_mean_and_equal_sizes_pass_through():
    x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
    mean = x.reshape(2, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(glead.resize(x, 32), mean, rtol=1e-5, atol=1e-6)
    assert glead.resize(x, 64) is x


def test_cosine_distance_formula():
    a = jax.random.normal(jax.random.key(0), (2, 3, 3, 5))
    b = jax.random.normal(jax.random.key(1), (2, 3, 3, 5))
    an, bn = np.asarray(a), np.asarray(b)
    cos = (an * bn).sum(-1) / (np.linalg.norm(an, axis=-1) * np.linalg.norm(bn, axis=-1))
    np.testing.assert_allclose(glead.cosine_distance(a, b), 1 - cos.mean(), rtol=1e-5)
    np.testing.assert_allclose(glead.cosine_distance(a, 2.5 * a), 0.0, atol=1e-6)
    np.testing.assert_allclose(glead.cosine_distance(a, -a), 2.0, rtol=1e-6)
    assert float(glead.cosine_distance(jnp.zeros_like(a), b)) == 1.0  # norms clamped at eps: no NaN


@pytest.fixture(scope="module")
def micro():
    """(experiment of tiny_ggdr + CLR at 16 px, its initial state, one batch)."""
    experiment = build.build(micro_glead(), 1)
    state = build.initial_state(experiment, sharding.make_mesh(jax.devices()[:1]))
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    return experiment, state, {"image": jnp.asarray(images), "label": jnp.zeros(4, jnp.int32)}


def glead_jacobians(losses, phase, state, batch, terms):
    """A jitted f(g_params, d_params) -> (the phase's ``terms``, their gradients w.r.t. G's and D's parameters)."""

    def values(g_params, d_params):
        nets = {**state.nets, "g": state.nets["g"].replace(params=g_params)}
        inputs = PhaseInputs(nets=nets, aux=state.aux, batch=batch, rng=jax.random.key(3), constrain=lambda x: x)
        _, out = getattr(losses, phase)(d_params, inputs)
        values = jnp.stack([out.metrics[t] for t in terms])
        return values, values

    return jax.jit(jax.jacrev(values, argnums=(0, 1), has_aux=True))


def glead_plugin(losses):
    (plugin,) = [plugin for plugin in losses.plugins if isinstance(plugin, glead.GLeaD)]
    return plugin


@pytest.mark.parametrize(
    "fake_target, fake_distance", [("gfeat", "cosine"), ("gfwimage", "mse")], ids=["ggdr", "glead"]
)
def test_every_glead_term_trains_d_only(micro, fake_target, fake_distance):
    """Gradients of each GLeaD term (Dmain's real and fake terms, Dreg's real term): exactly zero for every G
    parameter, non-zero for D; yet the terms depend on G (its parameters are constants, not absent)."""
    experiment, state, batch = micro
    losses = experiment.method.phases[0].loss.__self__
    plugin = dataclasses.replace(
        glead_plugin(losses), fake_target=fake_target, fake_distance=fake_distance, fake_weight=1.0
    )
    losses = dataclasses.replace(losses, plugins=(plugin,))
    g_params, d_params = state.nets["g"].params, state.nets["d"].params
    nudged = jax.tree.map(lambda p: p + 0.05, g_params)
    for phase, terms in (("d_main", ["d_glead_real", "d_glead_fake"]), ("d_reg", ["d_reg_glead_real"])):
        f = glead_jacobians(losses, phase, state, batch, terms)
        (g_grads, d_grads), values = f(g_params, d_params)
        assert np.all(np.isfinite(values))
        for i, term in enumerate(terms):
            assert all(not np.any(leaf[i]) for leaf in jax.tree.leaves(g_grads)), term
            assert sum(float(jnp.abs(leaf[i]).sum()) for leaf in jax.tree.leaves(d_grads)) > 0, term
            decoder_grads = d_grads["decoder"]
            assert sum(float(jnp.abs(leaf[i]).sum()) for leaf in jax.tree.leaves(decoder_grads)) > 0, term
        _, moved = f(nudged, d_params)
        assert np.all(np.abs(moved - values) > 1e-6), (phase, values, moved)


def test_the_dreg_quirk_switches_off(micro):
    experiment, state, batch = micro
    losses = experiment.method.phases[0].loss.__self__
    inputs = PhaseInputs(nets=state.nets, aux=state.aux, batch=batch, rng=jax.random.key(0), constrain=lambda x: x)
    for in_dreg, expected in ((True, {"d_r1", "d_reg_glead_real"}), (False, {"d_r1"})):
        others = tuple(plugin for plugin in losses.plugins if plugin is not glead_plugin(losses))
        plugins = (*others, dataclasses.replace(glead_plugin(losses), in_dreg=in_dreg))
        phase = dataclasses.replace(losses, plugins=plugins).d_reg
        metrics = jax.eval_shape(lambda params, phase=phase: phase(params, inputs)[1].metrics, state.nets["d"].params)
        assert set(metrics) == expected


@pytest.mark.parametrize(
    "field, value",
    [
        ("res_g", 12),
        ("decoder_res", 4),
        ("real_distance", "l1"),
        ("fake_target", "gimage"),
        ("fake_distance", "lpips"),  # gfeat compares feature maps: cosine or mse
        ("fake_weight", -1.0),
    ],
)
def test_bad_glead_settings_raise_one_line_user_errors(field, value):
    config = micro_glead("tiny_ggdr")
    config.glead[field] = value
    with pytest.raises(UserError, match=f"glead.{field}"):
        PLUGINS.get("glead")(config)


def test_lpips_distances_need_weights_and_decoders_need_stylegan2_without_ada():
    config = micro_glead("tiny", **{"glead.real_distance": "lpips"})
    with pytest.raises(UserError, match="glead.lpips_weights"):
        PLUGINS.get("glead")(config)
    config = micro_glead("tiny", **{"model.arch": "dcgan", "method": "gan"})
    with pytest.raises(UserError, match="model.arch='stylegan2'"):
        build.build(config, 1)
    with pytest.raises(UserError, match="GLeaD with ADA"):
        build.build(micro_glead("tiny", **{"augment.pipe": "bgc"}), 1)


def test_dataset_configs_follow_the_official_scripts():
    for name, res_g, kimg, mirror, num_real in (
        ("ffhq", 64, 25000, True, None),
        ("church", 32, 50000, False, None),
        ("bedroom", 32, 50000, False, 50000),
    ):
        glead_only, ggdr = (load_config_file("configs/glead.py", name + s) for s in ("", "_ggdr"))
        for c in (glead_only, ggdr):
            assert (c.glead.enabled, c.glead.res_g, c.glead.decoder_res, c.glead.in_dreg) == (True, res_g, 64, True)
            assert (c.glead.real_distance, c.glead.real_weight) == ("lpips", 10.0)
            assert (c.data.resolution, c.train.batch_size, c.model.mbstd_group_size, c.model.channel_base) == (
                256,
                64,
                8,
                16384,
            )
            assert (c.loss.r1_gamma, c.optim.g_lr, c.train.ema_kimg, c.augment.pipe) == (1.0, 0.0025, 20.0, "")
            assert (c.data.mirror, c.train.steps, c.eval.metrics, c.eval.num_real) == (
                mirror,
                kimg * 1000 // 64,
                "fid",
                num_real,
            )
            assert not c.clr.enabled
        assert (glead_only.glead.fake_target, glead_only.glead.fake_distance, glead_only.glead.fake_weight) == (
            "gfwimage",
            "lpips",
            3.0,
        )
        assert (ggdr.glead.fake_target, ggdr.glead.fake_distance, ggdr.glead.fake_weight) == ("gfeat", "cosine", 10.0)
        for variant in (name, name + "_ggdr"):  # _clr: the same run with CLR's terms (phi = D's features)
            plain, with_clr = (load_config_file("configs/glead.py", variant + s).to_dict() for s in ("", "_clr"))
            assert with_clr["clr"].pop("enabled") and not plain["clr"].pop("enabled")
            assert plain == with_clr and plain["clr"]["phi"] == "features"
    tiny = load_config_file("configs/glead.py", "tiny")
    assert (tiny.glead.res_g, tiny.glead.decoder_res, tiny.glead.real_distance, tiny.glead.fake_distance) == (
        16,
        16,
        "mse",
        "mse",
    )
    assert load_config_file("configs/glead.py", "tiny_ggdr").glead.fake_distance == "cosine"
    with pytest.raises(ValueError, match="configs/glead.py takes"):
        load_config_file("configs/glead.py", "lsun")


def test_tiny_clr_trains_with_finite_losses_and_resumes_bitwise(tmp_path):
    """Two steps of configs/glead.py:tiny_clr (pure GLeaD with MSE, and CLR) at 16 px, every phase each step; the
    second step from the first one's checkpoint equals the second step continued in memory, bit for bit."""
    config = micro_glead("tiny_clr")
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    mesh = sharding.make_mesh(jax.devices()[:1])
    experiment = build.build(config, 1)
    step, active = build.train_step_fn(experiment, mesh), experiment.method.active_phases
    batch = train.step_batch({"image": images, "label": np.zeros(4, np.int32)}, 1, mesh)
    state, first = step(build.initial_state(experiment, mesh), batch, active(0))
    checkpointer = checkpoints.Checkpointer(str(tmp_path), None)
    checkpointer.save(1, state, config)
    restored = checkpointer.restore(1, build.abstract_state(experiment, mesh))
    checkpointer.close()
    continued, second = step(state, batch, active(1))
    resumed, resumed_metrics = step(restored, batch, active(1))
    for metrics in (first, second):
        expected = {"d_adv", "d_r1", "d_glead_real", "d_glead_fake", "d_reg_glead_real", "d_clr", "g_adv", "g_rec"}
        assert expected <= set(metrics)
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert int(continued.step) == 2
    assert_trees_equal(jax.device_get(continued), jax.device_get(resumed))
    assert_trees_equal(jax.device_get(second), jax.device_get(resumed_metrics))


def test_decoder_heads_and_g_decoding_match_the_official_glead_code():
    """tests/data/glead_official.npz (see tests/data/README.md): the official networks_glead.py D (32 px, decoder to
    16 px, res_g 8) and its G's blocks above 8 px decoding the resized heads, on fixed random weights. The official
    D's state dict (decoder included) converts as --mode=import reads it."""
    f = load_fixture("glead_official.npz")
    G, D = stylegan2.build(
        (32, 32, 3), z_dim=512, w_dim=512, mapping_layers=1, channel_base=128, channel_max=16, d_decoder=(16, 8, 512)
    )
    out = jax.jit(D.apply)(official_weights.discriminator_variables(D, state_dict(f, "D")), nhwc(f["d_input"]))
    assert_close(out["logits"], f["logits"][:, 0])
    assert_close(out["glead_image"], nhwc(f["inter_img"]))
    assert_close(out["glead_feature"], nhwc(f["inter_feat"]))
    assert_close(out["glead_w"], f["ws"][:, 0])
    assert_close(glead.resize(out["glead_feature"], 8), nhwc(f["feat8"]))
    assert_close(glead.resize(out["glead_image"], 8), nhwc(f["img8"]))
    assert_close(glead.cosine_distance(nhwc(f["feat8"]), nhwc(f["cos_target"])), f["cos_dist"])

    initial = jax.jit(functools.partial(G.init, noise_mode="const"))(jax.random.key(0), jnp.zeros((1, 512)))
    g_variables = official_weights.state_dict_to_variables(  # only the blocks above 8 px are in the fixture
        state_dict(f, "G"),
        initial,
        resample_filter=G.resample_filter,
        skip=lambda path: path[0] == "w_avg" or path[1] == "mapping_network" or path[2] in ("b4", "b8"),
    )
    ws = jnp.repeat(jnp.asarray(f["ws"]), 5, axis=1)
    decode = functools.partial(G.apply, method="synthesis_from", noise_mode="const", train=True)
    decoded = jax.jit(decode)(g_variables, ws, nhwc(f["feat8"]), nhwc(f["img8"]))
    assert_close(decoded, nhwc(f["decoded"]), tol=1e-4)


def test_lpips_distances_read_the_weights_file(tmp_path):
    """glead.lpips_weights is loaded at build; the plugin's lpips distance is the batch mean of LPIPS with it."""
    images = jax.ShapeDtypeStruct((1, lpips.MIN_SIZE, lpips.MIN_SIZE, 3), jnp.float32)
    shapes = jax.eval_shape(lpips.LPIPS().init, jax.random.key(0), images, images)["params"]
    rng = np.random.default_rng(0)
    flat = {k: rng.uniform(0.0, 0.1, v.shape).astype(np.float32) for k, v in npz.flatten(shapes).items()}
    np.savez(tmp_path / "lpips.npz", **flat)
    config = micro_glead("ffhq", **{"glead.lpips_weights": str(tmp_path / "lpips.npz")})
    plugin = PLUGINS.get("glead")(config)
    x, y = (jax.random.uniform(jax.random.key(i), (2, 32, 32, 3), minval=-1, maxval=1) for i in (1, 2))
    expected = lpips.lpips_distance({"params": npz.unflatten(flat)}, x, y).mean()
    assert (plugin.real_distance, plugin.fake_distance) == ("lpips", "lpips")  # pure GLeaD: LPIPS in both branches
    np.testing.assert_allclose(jax.jit(functools.partial(plugin.distance, "lpips"))(x, y), expected, rtol=1e-5)
    assert float(expected) > 0


def seeded_lpips_state_dicts(seed=0):
    """AlexNet ``features`` and LPIPS ``lin`` tensors in the real files' key layout, drawn from a seed exactly as
    tests/data/README.md says the glead_lpips.npz fixture drew them."""
    rng = np.random.RandomState(seed)
    alexnet = {}
    for index, cin, cout, k in ((0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3)):
        alexnet[f"features.{index}.weight"] = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(
            np.float32
        )
        alexnet[f"features.{index}.bias"] = (0.1 * rng.standard_normal(cout)).astype(np.float32)
    lins = {
        f"lin{i}.model.1.weight": rng.uniform(0, 1, (1, c, 1, 1)).astype(np.float32)
        for i, c in enumerate(lpips.CHANNELS)
    }
    return alexnet, lins


def test_real_term_distance_matches_the_official_glead_lpips_loss():
    """tests/data/glead_lpips.npz: the official GLeaD LPIPS module (training/lpips, the one loss_glead.py builds) on
    seeded weights, 10 * LPIPS(x, y) and its gradient in x; ours through the converter and the plugin's distance."""
    f = load_fixture("glead_lpips.npz")
    alexnet, lins = seeded_lpips_state_dicts(0)
    flat = {**convert_lpips.alexnet_to_flax(alexnet, "seeded"), **convert_lpips.lin_to_flax(lins, "seeded")}
    plugin = glead.GLeaD(lpips_variables={"params": npz.unflatten(flat)})
    x, y = nhwc(f["x"]), nhwc(f["y"])
    loss, grad = jax.jit(jax.value_and_grad(lambda x: plugin.real_weight * plugin.distance("lpips", x, y)))(x)
    assert plugin.real_weight == 10.0 and float(f["loss"]) > 1.0
    grad_error = np.abs(np.asarray(grad) - nhwc(f["grad_x"])).max() / np.abs(f["grad_x"]).max()
    print(f"loss {float(loss):.6f} vs {float(f['loss']):.6f}; gradient max error / max {grad_error:.1e}")
    np.testing.assert_allclose(loss, f["loss"], rtol=1e-5)
    assert grad_error < 1e-4
