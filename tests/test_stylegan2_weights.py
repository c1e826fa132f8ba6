"""The official-weights converter: layouts, buffers, errors naming the tensor, .pth reading, constructor kwargs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import hwio, load_fixture, state_dict

from clr_gan_jax.errors import DataError, UserError
from clr_gan_jax.models.stylegan2 import Discriminator, Generator
from clr_gan_jax.models.stylegan2.official_weights import (
    discriminator_from_official_kwargs,
    discriminator_variables,
    generator_from_official_kwargs,
    generator_variables,
    load_state_dicts,
)

REF = load_fixture("stylegan2_networks.npz")
G_STATE = state_dict(REF, "net64/G")
D_STATE = state_dict(REF, "net64/D")
G_KWARGS = json.loads(str(REF["net64/G/init_kwargs"]))
D_KWARGS = json.loads(str(REF["net64/D/init_kwargs"]))


@pytest.fixture(scope="module")
def generator():
    return generator_from_official_kwargs(G_KWARGS)


@pytest.fixture(scope="module")
def discriminator():
    return discriminator_from_official_kwargs(D_KWARGS)


def test_generator_layouts_and_buffers(generator):
    variables = generator_variables(generator, G_STATE)
    synthesis = variables["params"]["synthesis_network"]
    np.testing.assert_array_equal(
        synthesis["b8"]["conv0"]["kernel"], hwio(G_STATE["synthesis.b8.conv0.weight"])
    )  # an up=2 kernel is not flipped: the layer flips it at run time, as the official code does
    np.testing.assert_array_equal(synthesis["b4"]["const"], G_STATE["synthesis.b4.const"].transpose(1, 2, 0))
    np.testing.assert_array_equal(
        variables["params"]["mapping_network"]["fc0"]["kernel"], G_STATE["mapping.fc0.weight"].T
    )
    np.testing.assert_array_equal(
        synthesis["b64"]["torgb"]["affine"]["bias"], G_STATE["synthesis.b64.torgb.affine.bias"]
    )  # stored with its +1, not added again
    np.testing.assert_array_equal(variables["w_avg"]["mapping_network"]["w_avg"], G_STATE["mapping.w_avg"])
    np.testing.assert_array_equal(
        variables["noise_const"]["synthesis_network"]["b64"]["conv1"]["noise_const"],
        G_STATE["synthesis.b64.conv1.noise_const"],
    )
    leaves = jax.tree.leaves(variables)
    imported = {k for k in G_STATE if not k.endswith("resample_filter")}
    assert len(leaves) == len(imported)
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)


def test_discriminator_flatten_order_kept_in_the_fc_weights(discriminator):
    variables = discriminator_variables(discriminator, D_STATE)
    np.testing.assert_array_equal(variables["params"]["b4"]["fc"]["kernel"], D_STATE["b4.fc.weight"].T)
    np.testing.assert_array_equal(
        variables["params"]["mapping_network"]["embed"]["kernel"], D_STATE["mapping.embed.weight"].T
    )


def test_discriminator_heads_come_from_initial_variables(discriminator):
    with_heads = discriminator.clone(heads=(("aux", 3),))
    with pytest.raises(UserError, match="heads the official weights lack"):
        discriminator_variables(with_heads, D_STATE)
    images, labels = jnp.zeros((1, 64, 64, 3)), jnp.zeros((1,), jnp.int32)
    shapes = jax.eval_shape(lambda: with_heads.init(jax.random.key(0), images, labels))
    initial = jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), shapes)
    variables = discriminator_variables(with_heads, D_STATE, initial=initial)
    np.testing.assert_array_equal(variables["params"]["head_aux"]["kernel"], np.full((8, 3), 0.5))
    np.testing.assert_array_equal(variables["params"]["b4"]["out"]["kernel"], D_STATE["b4.out.weight"].T)


def test_torch_tensors_are_accepted(generator):
    torch = pytest.importorskip("torch")
    tensors = {k: torch.from_numpy(v) for k, v in G_STATE.items()}
    variables = generator_variables(generator, tensors)
    np.testing.assert_array_equal(variables["w_avg"]["mapping_network"]["w_avg"], G_STATE["mapping.w_avg"])


def test_shape_mismatch_names_the_tensor_and_both_shapes(generator):
    bad = dict(G_STATE, **{"synthesis.b16.conv1.weight": np.zeros((8, 8, 1, 1), np.float32)})
    with pytest.raises(UserError, match=r"'synthesis.b16.conv1.weight' has shape \(8, 8, 1, 1\), .* \(8, 8, 3, 3\)"):
        generator_variables(generator, bad)


def test_missing_tensor_is_named(generator):
    bad = {k: v for k, v in G_STATE.items() if k != "synthesis.b32.conv0.noise_strength"}
    with pytest.raises(UserError, match=r"tensor 'synthesis.b32.conv0.noise_strength' is missing"):
        generator_variables(generator, bad)


def test_unexpected_tensor_is_named(discriminator):
    bad = dict(D_STATE, **{"b4.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(UserError, match=r"unexpected tensor 'b4.extra.weight'"):
        discriminator_variables(discriminator, bad)


def test_a_different_resample_filter_is_an_error(discriminator):
    bad = dict(D_STATE, **{"b8.resample_filter": np.ones((4, 4), np.float32) / 16})
    with pytest.raises(UserError, match=r"'b8.resample_filter' is not the model's resample filter"):
        discriminator_variables(discriminator, bad)


def test_weights_of_another_configuration_are_rejected():
    wrong = Generator(img_resolution=64, z_dim=16, w_dim=16, c_dim=3, mapping_layers=3, channel_base=256)
    with pytest.raises(UserError, match="has shape"):
        generator_variables(wrong, G_STATE)


def test_load_state_dicts_from_pth(tmp_path, generator):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights.pth"
    torch.save(
        {name: {k: torch.from_numpy(v) for k, v in sd.items()} for name, sd in [("G", G_STATE), ("D", D_STATE)]}, path
    )
    loaded = load_state_dicts(str(path))
    assert sorted(loaded) == ["D", "G"]
    np.testing.assert_array_equal(loaded["G"]["mapping.w_avg"], G_STATE["mapping.w_avg"])
    generator_variables(generator, loaded["G"])


def test_load_state_dicts_errors(tmp_path):
    torch = pytest.importorskip("torch")
    with pytest.raises(DataError, match="no file"):
        load_state_dicts(str(tmp_path / "missing.pth"))
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a readable torch file"):
        load_state_dicts(str(tmp_path / "garbage.pth"))
    torch.save({"w": torch.zeros(2)}, tmp_path / "flat.pth")
    with pytest.raises(DataError, match="must hold a dict of state dicts"):
        load_state_dicts(str(tmp_path / "flat.pth"))


def test_official_kwargs_with_legacy_defaults_and_errors():
    legacy_g = dict(
        G_KWARGS,
        mapping_kwargs=dict(G_KWARGS["mapping_kwargs"], embed_features=None, activation="lrelu", w_avg_beta=0.995),
        synthesis_kwargs=dict(G_KWARGS["synthesis_kwargs"], resample_filter=[1, 3, 3, 1], fp16_channels_last=False),
    )
    G = generator_from_official_kwargs(legacy_g, compute_dtype=jnp.bfloat16)
    assert (G.mapping_layers, G.architecture, G.conv_clamp, G.resample_filter) == (3, "resnet", 256, (1, 3, 3, 1))
    assert G.compute_dtype == jnp.bfloat16
    with pytest.raises(UserError, match="argument activation='relu' is not supported"):
        generator_from_official_kwargs(dict(G_KWARGS, mapping_kwargs={"activation": "relu"}))
    with pytest.raises(UserError, match="argument 'kernel_size' is not supported"):
        generator_from_official_kwargs(dict(G_KWARGS, synthesis_kwargs={"kernel_size": 5}))
    D = discriminator_from_official_kwargs(
        dict(D_KWARGS, block_kwargs={"freeze_layers": 4}, epilogue_kwargs={"mbstd_group_size": 8})
    )
    assert isinstance(D, Discriminator) and D.mbstd_group_size == 8 and D.architecture == "skip"
