"""StyleGAN2 layers and blocks with official weights against the official modules (tests/data/stylegan2_layers.npz).

The layers' logic does not depend on the ops' implementation (test_stylegan2_ops.py tests both against the
official ops, and their gradients equal); these tests use XLA's convolutions, which compile faster.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, load_fixture, nhwc, state_dict

from clr_gan_jax.models import stylegan2 as sg2
from clr_gan_jax.models.stylegan2 import ops
from clr_gan_jax.models.stylegan2.official_weights import state_dict_to_variables

REF = load_fixture("stylegan2_layers.npz")
ROOT_HALF = float(np.sqrt(0.5))


@pytest.fixture(autouse=True)
def xla_convolutions():
    with ops.implementation("conv"):
        yield


def official(case, module: nn.Module, *args, **kwargs):
    """``module`` applied with the official weights of ``case``."""
    target = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
    variables = state_dict_to_variables(state_dict(REF, case), target, resample_filter=(1, 3, 3, 1))
    return jax.jit(lambda v, *a: module.apply(v, *a, **kwargs))(variables, *args)


def nhwc_or_none(case, name):
    key = f"{case}/{name}"
    return nhwc(REF[key]) if key in REF else None


@pytest.mark.parametrize(
    "case, module",
    [
        ("fc_lrelu_lr001", sg2.FullyConnected(5, activation="lrelu", lr_multiplier=0.01, bias_init=1)),
        ("fc_linear", sg2.FullyConnected(5)),
    ],
)
def test_fully_connected(case, module):
    assert_close(official(case, module, REF[f"{case}/x"]), REF[f"{case}/y"])


@pytest.mark.parametrize(
    "case, module",
    [
        ("conv_plain", sg2.Conv2dLayer(5, 3, activation="lrelu")),
        ("conv_down_clamp_resnet", sg2.Conv2dLayer(5, 3, activation="lrelu", down=2, conv_clamp=1.5)),
        ("conv_up", sg2.Conv2dLayer(5, 3, activation="lrelu", up=2)),
        ("conv_skip_up", sg2.Conv2dLayer(5, 1, use_bias=False, up=2)),
        ("conv_skip_down", sg2.Conv2dLayer(5, 1, use_bias=False, down=2)),
    ],
)
def test_conv2d_layer(case, module):
    gain = float(REF[f"{case}/gain"])
    assert_close(official(case, module, nhwc(REF[f"{case}/x"]), gain=gain), nhwc(REF[f"{case}/y"]))


@pytest.mark.parametrize(
    "case, module",
    [
        ("synth_up", sg2.SynthesisLayer(5, resolution=8, up=2, conv_clamp=3.0)),
        ("synth_plain", sg2.SynthesisLayer(5, resolution=8)),
    ],
)
@pytest.mark.parametrize("noise_mode", ["const", "none"])
@pytest.mark.parametrize("fused", [False, True])
def test_synthesis_layer(case, module, noise_mode, fused):
    x, w = nhwc(REF[f"{case}/x"]), REF[f"{case}/w"]
    y = official(case, module, x, w, noise_mode=noise_mode, fused_modconv=fused)
    assert_close(y, nhwc(REF[f"{case}/y_{noise_mode}_fused{int(fused)}"]))


class TwoLayers(nn.Module):
    """Two linear synthesis layers on the same input, so the noise each adds can be read off its output."""

    @nn.compact
    def __call__(self, x, w, noise_mode):
        layers = [sg2.SynthesisLayer(5, resolution=8, activation="linear", name=n) for n in ("a", "b")]
        return [layer(x, w, noise_mode=noise_mode) for layer in layers]


def test_random_noise_differs_per_layer_sample_and_call():
    module = TwoLayers()
    x, w = nhwc(REF["synth_plain/x"]), REF["synth_plain/w"]
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x, w, "none"))
    variables = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), variables)  # noise_strength 1

    @jax.jit
    def noise(key):
        with_noise = module.apply(variables, x, w, "random", rngs={"noise": key})
        without = module.apply(variables, x, w, "none")
        return [a - b for a, b in zip(with_noise, without)]

    (a, b), (c, _) = noise(jax.random.key(1)), noise(jax.random.key(2))
    assert a.shape == (2, 8, 8, 5)
    np.testing.assert_allclose(a, jnp.broadcast_to(a[..., :1], a.shape), atol=1e-5)  # one map for all channels
    assert abs(float(a.std()) - 1) < 0.3
    for other in (b, c, a[::-1]):  # another layer, another call, another sample
        assert float(jnp.abs(a - other).max()) > 0.5
    np.testing.assert_array_equal(noise(jax.random.key(1))[0], a)


@pytest.mark.parametrize("fused", [False, True])
def test_torgb(fused):
    y = official("torgb", sg2.ToRGB(3, conv_clamp=1.0), nhwc(REF["torgb/x"]), REF["torgb/w"], fused_modconv=fused)
    assert_close(y, nhwc(REF[f"torgb/y_fused{int(fused)}"]))


@pytest.mark.parametrize(
    "case, kwargs",
    [
        ("sblock_first", {"in_channels": 0, "resolution": 4, "is_last": False, "architecture": "skip"}),
        ("sblock_orig", {"in_channels": 6, "resolution": 8, "is_last": False, "architecture": "orig"}),
        ("sblock_skip", {"in_channels": 6, "resolution": 8, "is_last": False, "architecture": "skip"}),
        (
            "sblock_resnet_last",
            {"in_channels": 6, "resolution": 8, "is_last": True, "architecture": "resnet", "conv_clamp": 2.0},
        ),
    ],
)
@pytest.mark.parametrize("fused", [False, True])
def test_synthesis_block(case, kwargs, fused):
    """Block structure per architecture; the ToRGB takes the w after the convs' ws."""
    block = sg2.SynthesisBlock(out_channels=5, img_channels=3, **kwargs)
    x, img = nhwc_or_none(case, "x"), nhwc_or_none(case, "img")
    y, y_img = official(case, block, x, img, REF[f"{case}/ws"], noise_mode="const", fused_modconv=fused)
    assert_close(y, nhwc(REF[f"{case}/y_fused{int(fused)}"]))
    expected_img = nhwc_or_none(case, f"img_fused{int(fused)}")
    assert (y_img is None) == (expected_img is None)
    if expected_img is not None:
        assert y_img.dtype == jnp.float32
        assert_close(y_img, expected_img)


@pytest.mark.parametrize(
    "case, kwargs",
    [
        ("dblock_resnet_first", {"in_channels": 0, "architecture": "resnet"}),
        ("dblock_skip", {"in_channels": 4, "architecture": "skip"}),
        ("dblock_orig_clamp", {"in_channels": 4, "architecture": "orig", "conv_clamp": 1.0}),
    ],
)
def test_discriminator_block(case, kwargs):
    block = sg2.DiscriminatorBlock(tmp_channels=4, out_channels=6, resolution=8, img_channels=3, **kwargs)
    y, y_img = official(case, block, nhwc_or_none(case, "x"), nhwc(REF[f"{case}/img"]))
    assert_close(y, nhwc(REF[f"{case}/y"]))
    expected_img = nhwc_or_none(case, "img_out")
    assert (y_img is None) == (expected_img is None)
    if expected_img is not None:
        assert_close(y_img, expected_img)


@pytest.mark.parametrize(
    "case, kwargs",
    [
        ("epilogue_orig", {"cmap_dim": 0, "architecture": "orig", "mbstd_group_size": 2}),
        (
            "epilogue_skip_cmap",
            {"cmap_dim": 5, "architecture": "skip", "mbstd_group_size": 2, "mbstd_num_channels": 2, "conv_clamp": 1.0},
        ),
    ],
)
def test_discriminator_epilogue(case, kwargs):
    """mbstd, conv, FC on the (C, H, W) flattening (phi = its output), out, cmap projection."""
    epilogue = sg2.DiscriminatorEpilogue(6, resolution=4, img_channels=3, **kwargs)
    cmap = REF[f"{case}/cmap"] if kwargs["cmap_dim"] else None
    logits, features = official(case, epilogue, nhwc(REF[f"{case}/x"]), nhwc(REF[f"{case}/img"]), cmap)
    assert_close(logits, REF[f"{case}/y"])
    assert_close(features, REF[f"{case}/features"])


def test_equalized_lr_initialisation():
    """Stored weights N(0, 1) / lr_multiplier, bias = bias_init (not divided); affine layers start at styles ~ 1."""
    fc = sg2.FullyConnected(64, lr_multiplier=0.01, bias_init=1.0)
    params = jax.jit(fc.init)(jax.random.key(0), jnp.zeros((1, 128)))["params"]
    assert abs(float(params["kernel"].std()) - 100.0) < 3.0
    np.testing.assert_array_equal(params["bias"], 1.0)
    layer = sg2.SynthesisLayer(8, resolution=4)
    variables = jax.jit(layer.init)(jax.random.key(0), jnp.zeros((1, 4, 4, 8)), jnp.zeros((1, 16)))
    np.testing.assert_array_equal(variables["params"]["affine"]["bias"], 1.0)
    assert float(variables["params"]["noise_strength"]) == 0.0
    assert variables["noise_const"]["noise_const"].shape == (4, 4)
