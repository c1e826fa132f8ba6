"""Every experiment config builds; every zoo variant trains a few steps on CIFAR-10 through TFDS (mock data)."""

import glob
import os

import numpy as np
import pytest
from helpers import REPO, load_config_file, train_steps

from clr_gan_jax import build, evaluate, train
from clr_gan_jax.default_config import COMPARISONS, CONDITIONAL

ZOO_VARIANTS = ["dcgan", "dcgan_r1", "wgan", "wgan_gp", "sngan", "sngan_hinge", "lsgan"]
# the conditional ones train in tests/test_conditional.py, the comparisons in tests/test_realness_adaptivemix.py
ALL_ZOO = ZOO_VARIANTS + list(COMPARISONS) + list(CONDITIONAL)
ARGUMENTS = {
    "ring8.py": ["clr", "baseline", "veegan", "veegan_clr"],
    "cifar10_zoo.py": [v + s for v in ALL_ZOO for s in ("", "_clr")],
    "digits_dcgan_clr.py": ["", *(v + s for v in (*CONDITIONAL, *COMPARISONS) for s in ("", "_clr"))],
    "digits_infogan.py": ["infogan", "infogan_clr", "infogan_bn", "infogan_bn_clr"],
    "eigengan.py": ["digits", "digits_clr"],  # ffhq needs data.path; tests/test_eigengan.py builds its networks
}


def config_files():
    return sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "configs", "*.py")))


@pytest.mark.parametrize("path", config_files(), ids=os.path.basename)
def test_config_builds(path):
    name = os.path.basename(path)
    for args in [[a] for a in ARGUMENTS[name]] if name in ARGUMENTS else [[]]:
        config = load_config_file(path, *args)
        build.build(config, num_devices=8)
        evaluate.validate(config, num_devices=8)
        assert config.clr.enabled == (not args or args[0] in ("", "clr") or args[0].endswith("_clr"))


def test_zoo_config_refuses_an_unknown_variant():
    with pytest.raises(ValueError, match="takes one of dcgan, dcgan_clr, dcgan_r1"):
        load_config_file("configs/cifar10_zoo.py", "began")


@pytest.mark.parametrize("objective", ALL_ZOO)
def test_a_zoo_variant_and_its_clr_twin_differ_only_in_clr(objective):
    plain, with_clr = (load_config_file("configs/cifar10_zoo.py", objective + s).to_dict() for s in ("", "_clr"))
    assert with_clr["clr"].pop("enabled") and not plain["clr"].pop("enabled")
    assert plain == with_clr


@pytest.mark.parametrize("variant", [v + "_clr" for v in ZOO_VARIANTS])
def test_zoo_variant_trains(variant):
    """Two steps of each objective with CLR on 8x8 images: finite losses that include the variant's own terms.

    The plain variants run the same code minus the CLR terms (their configs differ only in clr.enabled, tested
    above), so training them too would only double the compile time.
    """
    config = load_config_file("configs/cifar10_zoo.py", variant)
    config.data.resolution = 8
    config.model.update(g_width=16, d_width=16, z_dim=8)
    config.train.update(batch_size=8, n_critic=1)
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
    state, (*_, metrics) = train_steps(config, images, np.zeros(8, np.int32))
    terms = {"dcgan_r1": "d_r1", "wgan_gp": "d_gp"}
    expected = {"d_adv", "g_adv"} | ({"d_clr", "g_rec"} if config.clr.enabled else set())
    expected |= {terms[variant.removesuffix("_clr")]} if variant.removesuffix("_clr") in terms else set()
    assert expected <= set(metrics) and not {"d_clr", "d_r1", "d_gp"} - expected & set(metrics)
    assert int(state.step) == 2 and all(np.isfinite(float(v)) for v in metrics.values())
    assert ("spectral" in state.nets["d"].collections) == config.model.spectral_norm


@pytest.mark.slow
def test_zoo_config_trains_from_tfds(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = load_config_file("configs/cifar10_zoo.py", "sngan_clr")
    config.data.update(resolution=8, num_workers=0)
    config.model.update(g_width=16, d_width=16, z_dim=8)
    config.train.update(
        steps=2, batch_size=8, n_critic=2, log_every=1, sample_every=2, checkpoint_every=2, num_samples=4
    )
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        state = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2
    assert os.path.exists(tmp_path / "samples" / "step_0000002.png")
