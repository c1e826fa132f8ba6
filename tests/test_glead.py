"""GLeaD (+GGDR) on StyleGAN2: D's decoder and heads, G's upper blocks as a decoder, the plugin's terms and
their routing (D only), the configs, and a few training steps of the tiny preset."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clr_gan_jax.errors import UserError
from clr_gan_jax.models import stylegan2
from clr_gan_jax.models.stylegan2.discriminator import Decoder
from clr_gan_jax.models.stylegan2.layers import block_channels

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
    variables = D.init(jax.random.key(0), images)
    out = D.apply(variables, images)
    assert out["glead_image"].shape == (2, 16, 16, 3)
    assert out["glead_feature"].shape == (2, 16, 16, block_channels(8, **SMALL))
    assert out["glead_w"].shape == (2, 24)
    module = Decoder(16, feature_channels=32, w_dim=24, img_channels=3, **SMALL)
    params = {"params": variables["params"]["decoder"]}
    scaled = module.apply(params, {r: 3.0 * x for r, x in out["blocks"].items()})
    for name in ("glead_image", "glead_feature", "glead_w"):
        np.testing.assert_allclose(scaled[name], 3.0 * out[name], rtol=1e-4, atol=1e-5)
    bumped = module.apply(params, {**out["blocks"], 16: out["blocks"][16] + 1.0})
    np.testing.assert_allclose(bumped["glead_w"], out["glead_w"])  # 16x16 block output unused for decoder_res 16
    bumped = module.apply(params, {**out["blocks"], 8: out["blocks"][8] + 1.0})
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
    variables = G.init(jax.random.key(0), jnp.zeros((1, 16)))
    lower = {  # b4 and b8 of the 32 px G (a ToRGB in every block: architecture 'skip')
        kind: {**tree, "synthesis_network": {b: tree["synthesis_network"][b] for b in ("b4", "b8")}}
        for kind, tree in variables.items()
        if "synthesis_network" in tree
    }
    ws = jax.random.normal(jax.random.key(1), (2, G.num_ws_for(32), 16))
    full, feature = G.apply(variables, ws, method="synthesis", noise_mode="const", feature_res=8)
    assert feature.shape == (2, 8, 8, block_channels(8, **SMALL))
    image8 = G8.apply({**variables, **lower}, ws[:, :4], method="synthesis", noise_mode="const")
    assert 2 * np.log2(32 / 8) + 1 == ws[:, 3:].shape[1]
    resumed = G.apply(variables, ws[:, 3:], feature, image8, method="synthesis_from", noise_mode="const")
    np.testing.assert_allclose(resumed, full, rtol=1e-5, atol=1e-5)
    other = G.apply(variables, ws[:, 3:], feature + 0.1, image8, method="synthesis_from", noise_mode="const")
    assert not np.allclose(other, full, atol=1e-3)
    with pytest.raises(UserError):  # one w too many
        G.apply(variables, ws[:, 2:], feature, image8, method="synthesis_from", noise_mode="const")
