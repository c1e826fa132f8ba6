"""TFDS sources under `tfds.testing.mock_data`, which mocks `tfds.data_source` too."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")

from clr_gan_jax.data import tfds_source  # noqa: E402
from clr_gan_jax.data.image_transforms import DataError, ImageTransform  # noqa: E402

NUM_EXAMPLES = 6


@pytest.fixture
def mocked():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def _raw(name, index, split="train"):
    return tfds.data_source(name, split=split, download=False)[index]


def _check(source, shape):
    assert len(source) == NUM_EXAMPLES and source.shape == shape
    for i in range(len(source)):
        item = source[i]
        assert item["image"].shape == shape and item["image"].dtype == np.uint8
        assert item["label"].dtype == np.int32 and 0 <= item["label"] < max(source.num_classes, 1)


def test_cifar10(mocked):
    source = tfds_source.cifar10("test")
    assert source.num_classes == 10
    _check(source, (32, 32, 3))
    raw = _raw("cifar10", 2, "test")
    np.testing.assert_array_equal(source[2]["image"], raw["image"])
    assert source[2]["label"] == raw["label"]
    _check(tfds_source.cifar10(resolution=16), (16, 16, 3))
    reopened = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(reopened[3]["image"], source[3]["image"])


def test_celeb_a_takes_the_central_108_crop(mocked):
    source = tfds_source.celeb_a()
    assert source.num_classes == 0
    _check(source, (64, 64, 3))
    raw = _raw("celeb_a", 1)["image"]
    assert raw.shape == (218, 178, 3)
    crop = raw[55:163, 35:143]  # (218 - 108) / 2 rows, (178 - 108) / 2 columns
    expected = np.asarray(Image.fromarray(crop).resize((64, 64), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(source[1]["image"], expected)
    _check(tfds_source.celeb_a(resolution=32, crop_size=140), (32, 32, 3))


def test_lsun_center_crops_any_size(mocked):
    source = tfds_source.lsun("church_outdoor", resolution=32)
    assert source.name == "lsun/church_outdoor" and source.num_classes == 0
    _check(source, (32, 32, 3))
    raw = _raw("lsun/church_outdoor", 4)["image"]
    expected = ImageTransform.create(32, "center-crop")(Image.fromarray(raw), "raw")
    np.testing.assert_array_equal(source[4]["image"], expected)


def test_unprepared_dataset_names_the_command(tmp_path):
    with pytest.raises(DataError, match=r"tfds build cifar10 --file_format=array_record --data_dir="):
        tfds_source.cifar10(data_dir=tmp_path)


def test_reading_does_not_import_tensorflow():
    script = (
        "import sys, tensorflow_datasets as tfds\n"
        "from clr_gan_jax.data import tfds_source\n"
        "with tfds.testing.mock_data(num_examples=2, policy=tfds.testing.MockPolicy.USE_CODE):\n"
        "    tfds_source.lsun('bedroom', resolution=8)[1]\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
