"""Every experiment config loads and validates; the CIFAR-10 config trains through the TFDS path (mock data)."""

import glob
import importlib.util
import os

import pytest

from clr_gan_jax import train
from clr_gan_jax.validation import validate_config

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
VARIANTS = {"ring8.py": ["clr", "baseline"], "cifar10_dcgan.py": ["clr", "baseline"]}


def load(path, *args):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*args)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIGS, "*.py"))), ids=os.path.basename)
def test_config_validates(path):
    variants = VARIANTS.get(os.path.basename(path))
    for args in [[v] for v in variants] if variants else [[]]:
        config = load(path, *args)
        validate_config(config, num_devices=8)
        assert config.clr.enabled == (args != ["baseline"])


def test_cifar10_config_trains_from_tfds(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = load(os.path.join(CONFIGS, "cifar10_dcgan.py"), "clr")
    config.model.update(g_width=16, d_width=16)
    config.data.num_workers = 0
    config.train.update(steps=2, batch_size=8, n_critic=2, log_every=1, sample_every=2, checkpoint_every=2, num_samples=4)
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        state = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2
    assert os.path.exists(tmp_path / "samples" / "step_0000002.png")
