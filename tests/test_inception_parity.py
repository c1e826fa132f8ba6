"""The JAX Inception port against torch-fidelity's network, with random weights."""

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the parity test needs torch (test extra: pip install torch)")
if importlib.util.find_spec("torch_fidelity") is None:  # its __init__ needs torchvision: do not import it
    pytest.skip("the parity test needs torch-fidelity (pip install --no-deps torch-fidelity)", allow_module_level=True)

import jax

from clr_gan_jax.errors import UserError
from clr_gan_jax.metrics import convert_inception, inception, inception_weights, torch_reference


@pytest.fixture(scope="module")
def torch_model():
    return torch_reference.random_extractor(seed=0)


@pytest.fixture(scope="module")
def converted(torch_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("inception")
    src, dest = str(directory / "random_inception.pth"), str(directory / "random_inception.npz")
    torch.save(torch_model.state_dict(), src)
    sha256 = convert_inception.convert(src, dest, allow_unofficial=True)
    return dest, sha256


@pytest.mark.parametrize("resize_mode", ["pytorch", "tf1"])
@pytest.mark.parametrize("size", [32, 256])
def test_pool3_matches_torch(torch_model, converted, resize_mode, size):
    images = np.random.default_rng(size).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    expected = torch_reference.features(torch_model, images, resize_mode)
    weights = inception_weights.load_inception_params(converted[0])
    apply = jax.jit(inception.InceptionV3(resize_mode).apply)
    pool3, logits = apply(weights.variables, images)
    assert pool3.shape == (2, inception.FEATURE_DIM) and logits.shape == (2, inception.NUM_LOGITS)
    assert np.abs(expected).max() > 1e-2  # the random network does not collapse to 0
    rel = np.abs(np.asarray(pool3) - expected).max() / np.abs(expected).max()
    print(f"{resize_mode} {size}px: max abs diff / max abs feature = {rel:.2e}")
    assert rel < 1e-4


def test_weights_hash_is_stored(converted):
    path, sha256 = converted
    assert (
        inception_weights.load_inception_params(path).sha256
        == sha256
        == convert_inception.file_sha256(path.replace(".npz", ".pth"))
    )


def test_unofficial_file_is_refused(converted):
    with pytest.raises(ValueError, match="allow_unofficial"):
        convert_inception.convert(converted[0].replace(".npz", ".pth"), converted[0] + ".refused.npz")


def test_wrong_state_dict_is_refused(tmp_path):
    src = str(tmp_path / "other.pth")
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, src)
    with pytest.raises(ValueError, match="missing.*unexpected"):
        convert_inception.convert(src, str(tmp_path / "other.npz"), allow_unofficial=True)


def test_missing_weights_say_where_to_get_them(tmp_path):
    with pytest.raises(UserError, match="not found: download pt_inception-2015-12-05-6726825d.pth.*convert_inception"):
        inception_weights.load_inception_params(str(tmp_path / "absent.npz"))
