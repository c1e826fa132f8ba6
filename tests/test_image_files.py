"""Image folders and zips read directly: order, pixels, transforms, labels, bad files."""

import json
import pickle
import zipfile

import numpy as np
import pytest
from PIL import Image

from clr_gan_jax.data.image_files import ImageFolderSource
from clr_gan_jax.data.image_transforms import BadImageError, DataError, ImageTransform

SIDE = 24


def _save(path, pixels, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return pixels


def _stripes(height, width):
    """Red left quarter, green middle, blue right quarter: crops are visible in the pixels."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 4, 0] = 255
    pixels[:, width // 4 : width - width // 4, 1] = 255
    pixels[:, width - width // 4 :, 2] = 255
    return pixels


@pytest.fixture
def folder(tmp_path):
    """Square images in PNG, JPEG, WebP, grayscale and RGBA, in nested folders."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    pixels = {
        "b/1.png": _save(root / "b/1.png", rng.integers(0, 256, (SIDE, SIDE, 3), np.uint8)),
        "a/0.png": _save(root / "a/0.png", rng.integers(0, 256, (SIDE, SIDE, 3), np.uint8)),
        "gray.png": _save(root / "gray.png", rng.integers(0, 256, (SIDE, SIDE), np.uint8)),
        "rgba.png": _save(root / "rgba.png", rng.integers(0, 256, (SIDE, SIDE, 4), np.uint8)),
        "c/photo.jpg": _save(root / "c/photo.jpg", _stripes(SIDE, SIDE), quality=95),
        "c/photo.webp": _save(root / "c/photo.webp", _stripes(SIDE, SIDE), lossless=True),
    }
    (root / "notes.txt").write_text("not an image, not listed")
    return root, pixels


def _zip(root, dest, extra=()):
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
        for name, data in extra:
            archive.writestr(name, data)
    return dest


def test_folder_order_pixels_and_colour(folder):
    root, pixels = folder
    source = ImageFolderSource(root, SIDE)
    assert source.names == ["a/0.png", "b/1.png", "c/photo.jpg", "c/photo.webp", "gray.png", "rgba.png"]
    assert len(source) == 6 and source.num_classes == 0 and source.shape == (SIDE, SIDE, 3)
    items = [source[i] for i in range(len(source))]
    for item in items:
        assert item["image"].dtype == np.uint8 and item["image"].shape == (SIDE, SIDE, 3)
        assert item["label"] == 0 and item["label"].dtype == np.int32
    np.testing.assert_array_equal(items[0]["image"], pixels["a/0.png"])
    np.testing.assert_array_equal(items[1]["image"], pixels["b/1.png"])
    np.testing.assert_array_equal(items[3]["image"], pixels["c/photo.webp"])
    np.testing.assert_array_equal(items[2]["image"], np.asarray(Image.open(root / "c/photo.jpg")))  # lossy
    np.testing.assert_array_equal(items[4]["image"], np.repeat(pixels["gray.png"][..., None], 3, axis=-1))
    np.testing.assert_array_equal(items[5]["image"], pixels["rgba.png"][..., :3])


def test_one_channel(folder):
    root, pixels = folder
    source = ImageFolderSource(root, SIDE, channels=1)
    assert source.shape == (SIDE, SIDE, 1)
    np.testing.assert_array_equal(source[4]["image"][..., 0], pixels["gray.png"])
    expected = np.asarray(Image.fromarray(pixels["a/0.png"]).convert("L"))
    np.testing.assert_array_equal(source[0]["image"][..., 0], expected)


def test_zip_matches_folder_and_survives_pickle(folder, tmp_path):
    root, _ = folder
    archive = _zip(root, tmp_path / "images.zip", extra=[("__MACOSX/a/._0.png", b"resource fork")])
    from_folder = ImageFolderSource(root, SIDE)
    from_zip = ImageFolderSource(archive, SIDE)
    assert from_zip.names == from_folder.names
    for i in range(len(from_folder)):
        np.testing.assert_array_equal(from_zip[i]["image"], from_folder[i]["image"])
    reopened = pickle.loads(pickle.dumps(from_zip))  # after reading: the open archive must not travel
    np.testing.assert_array_equal(reopened[5]["image"], from_folder[5]["image"])


def test_resolution_defaults_to_the_first_image(folder):
    root, _ = folder
    assert ImageFolderSource(root).shape == (SIDE, SIDE, 3)


def test_mixed_sizes_without_crop_name_the_file(folder):
    root, _ = folder
    _save(root / "wide.png", _stripes(SIDE, 40))
    with pytest.raises(BadImageError, match=r"wide\.png is 40x24, not 24x24.*center-crop"):
        ImageFolderSource(root, SIDE)


def test_center_crop_non_square(tmp_path):
    stripes = _save(tmp_path / "wide.png", _stripes(SIDE, 48))  # 12 red, 24 green, 12 blue columns
    same_size = ImageFolderSource(tmp_path, SIDE, "center-crop")[0]["image"]
    np.testing.assert_array_equal(same_size, stripes[:, 12:36])
    assert (same_size == [0, 255, 0]).all()
    resized = ImageFolderSource(tmp_path, 8, "center-crop", resize_filter="box")[0]["image"]
    expected = np.asarray(Image.fromarray(stripes[:, 12:36]).resize((8, 8), Image.Resampling.BOX))
    np.testing.assert_array_equal(resized, expected)
    odd = _save(tmp_path / "odd.png", np.random.default_rng(2).integers(0, 256, (SIDE, SIDE + 3, 3), np.uint8))
    crops = ImageFolderSource(tmp_path, SIDE, "center-crop")
    odd_crop = crops[crops.names.index("odd.png")]["image"]
    np.testing.assert_array_equal(odd_crop, odd[:, 1 : SIDE + 1])  # offset rounds down, as in StyleGAN2-ADA


def test_center_crop_wide_letterboxes_and_refuses_small_images(tmp_path):
    stripes = _save(tmp_path / "a.png", _stripes(40, 64))
    source = ImageFolderSource(tmp_path, (32, 16), "center-crop-wide", resize_filter="box")
    image = source[0]["image"]
    assert source.shape == image.shape == (32, 32, 3)
    expected = np.asarray(Image.fromarray(stripes[4:36]).resize((32, 16), Image.Resampling.BOX))  # 64x32 = 2:1
    np.testing.assert_array_equal(image[8:24], expected)
    assert (image[:8] == 0).all() and (image[24:] == 0).all()
    _save(tmp_path / "small.png", _stripes(10, 20))
    with pytest.raises(BadImageError, match=r"small\.png is 20x10, too narrow"):
        ImageFolderSource(tmp_path, (32, 16), "center-crop-wide")
    assert ImageFolderSource(tmp_path, (32, 16), "center-crop-wide", skip_bad=True).names == ["a.png"]


def test_bad_files_are_named_or_skipped(folder):
    root, _ = folder
    (root / "corrupt.png").write_bytes(b"\x89PNG garbage")
    good_png = (root / "a/0.png").read_bytes()
    (root / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    with pytest.raises(BadImageError, match=r"corrupt\.png is not an image"):
        ImageFolderSource(root, SIDE)
    source = ImageFolderSource(root, SIDE, skip_bad=True)
    assert [name for name, _ in source.skipped] == ["corrupt.png", "truncated.png"]
    assert len(source) == 6 and "truncated.png" not in source.names
    (root / "corrupt.png").unlink()
    lazy = ImageFolderSource(root, SIDE)  # a truncated body passes the header check, fails on reading
    with pytest.raises(BadImageError, match=r"truncated\.png cannot be decoded"):
        lazy[lazy.names.index("truncated.png")]


def test_labels_from_dataset_json(folder, tmp_path):
    root, _ = folder
    names = ImageFolderSource(root, SIDE).names
    table = [[name, i % 3] for i, name in enumerate(names)] + [["elsewhere.png", 4]]
    (root / "dataset.json").write_text(json.dumps({"labels": table}))
    source = ImageFolderSource(root, SIDE)
    assert source.num_classes == 5
    assert [int(source[i]["label"]) for i in range(len(source))] == [0, 1, 2, 0, 1, 2]
    assert ImageFolderSource(_zip(root, tmp_path / "labelled.zip"), SIDE)[2]["label"] == 2
    unlabelled = ImageFolderSource(root, SIDE, labels_from=None)
    assert unlabelled.num_classes == 0 and unlabelled[2]["label"] == 0
    (root / "dataset.json").write_text(json.dumps({"labels": table[1:]}))
    with pytest.raises(DataError, match=r"a/0\.png has no label"):
        ImageFolderSource(root, SIDE)


def test_max_images(folder):
    root, _ = folder
    assert ImageFolderSource(root, SIDE, max_images=2).names == ["a/0.png", "b/1.png"]


def test_user_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderSource(tmp_path / "missing", SIDE)
    with pytest.raises(DataError, match="No .* images"):
        ImageFolderSource(tmp_path, SIDE)
    with pytest.raises(DataError, match="Unknown transform"):
        ImageTransform.create(SIDE, "center")
