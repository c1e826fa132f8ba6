"""Official weights in, same images out: --mode=import of official state dicts (the fixture networks of
tests/data/stylegan2_networks.npz), then --mode=generate against the official generate.py's images."""

import os

import numpy as np
import pytest
from helpers import load_config_file, load_fixture, state_dict
from PIL import Image

from clr_gan_jax import export, generate, official_import, train
from clr_gan_jax.errors import UserError

torch = pytest.importorskip("torch", reason="writing official .pth weights needs torch (test extra)")

REF = load_fixture("stylegan2_networks.npz")
# The fixture networks' official constructor arguments, as config overrides.
NETWORKS = {
    "net32": {
        "data.resolution": 32,
        "model.mapping_layers": 2,
        "model.channel_max": 16,
        "model.d_architecture": "resnet",
        "model.mbstd_group_size": 2,
    },
    "net64": {
        "data.resolution": 64,
        "model.mapping_layers": 3,
        "model.channel_max": 8,
        "model.g_architecture": "resnet",
        "model.d_architecture": "skip",
        "model.conv_clamp": 256.0,
        "model.num_classes": 3,
    },
}
SEEDS = {"net32": (([0, 1], 1.0), ([0], 0.7)), "net64": (([0], 1.0), ([0], 0.7))}


def fixture_config(name: str):
    config = load_config_file("configs/stylegan2.py", "tiny_clr")
    config.model.update(z_dim=16, w_dim=16, channel_base=128, num_fp16_res=0, conv_clamp=0.0, mbstd_group_size=4)
    config.update_from_flattened_dict(NETWORKS[name])
    config.clr.enabled = name == "net32"  # CLR-GAN's D: its 16 features are as wide as z
    return config


def write_weights(path, name: str, networks=("G", "D", "G_ema")):
    state_dicts = {net: state_dict(REF, f"{name}/{'G' if net == 'G_ema' else net}") for net in networks}
    tensors = {net: {k: torch.from_numpy(np.array(v)) for k, v in sd.items()} for net, sd in state_dicts.items()}
    torch.save(tensors, path)
    return str(path)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_imported_weights_give_the_official_generate_images(tmp_path, name):
    config = fixture_config(name)
    workdir = str(tmp_path / "run")
    official_import.import_official(config, workdir, write_weights(tmp_path / "weights.pth", name))
    class_idx = 1 if name == "net64" else None
    for seeds, psi in SEEDS[name]:
        outdir = str(tmp_path / f"psi{psi}")
        paths = generate.generate_images(config, workdir, seeds, outdir, trunc=psi, class_idx=class_idx)
        assert [os.path.basename(p) for p in paths] == [f"seed{seed:04d}.png" for seed in seeds]
        for seed, path in zip(seeds, paths):
            ours = np.asarray(Image.open(path)).astype(int)
            official = REF[f"{name}/generate/seed{seed}_psi{psi}"].astype(int)
            assert ours.shape == official.shape and np.abs(ours - official).max() <= 1
    assert os.path.exists(export.export_run(config, workdir))


def test_a_tensor_that_does_not_fit_the_config_is_named_and_nothing_is_written(tmp_path):
    config = fixture_config("net32")
    config.model.w_dim = 32
    with pytest.raises(UserError, match=r"tensor '.*' has shape .* the model expects"):
        official_import.import_official(config, str(tmp_path / "run"), write_weights(tmp_path / "w.pth", "net32"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="has no 'G_ema' state dict"):
        official_import.import_official(
            fixture_config("net32"), str(tmp_path / "run"), write_weights(tmp_path / "g.pth", "net32", ("G",))
        )


@pytest.mark.slow
def test_training_fine_tunes_from_imported_weights(tmp_path):
    config = fixture_config("net32")
    config.train.update(steps=1, batch_size=8, log_every=1, sample_every=1, checkpoint_every=1, num_samples=4)
    config.eval.metrics = ""
    workdir = str(tmp_path / "run")
    official_import.import_official(config, workdir, write_weights(tmp_path / "weights.pth", "net32", ("G_ema",)))
    state = train.train_and_evaluate(config, workdir)
    assert int(state.step) == 1
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["0", "1"]
