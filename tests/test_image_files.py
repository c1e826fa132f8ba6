"""Image folders, zips and LMDB folders read directly: order, pixels, transforms, labels, bad items."""

import io
import json
import logging
import pickle
import zipfile

import numpy as np
import pytest
from helpers import corrupt_zip_member, encode_image, random_image, save_image, write_lmdb, zip_folder
from PIL import Image

from clr_gan_jax.data import lmdb_store
from clr_gan_jax.data.image_files import ImageFolderSource
from clr_gan_jax.data.image_transforms import BadImageError, DataError, ImageTransform, UnfitImageError

SIDE = 24


def _stripes(height, width):
    """Red left quarter, green middle, blue right quarter: crops are visible in the pixels."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 4, 0] = 255
    pixels[:, width // 4 : width - width // 4, 1] = 255
    pixels[:, width - width // 4 :, 2] = 255
    return pixels


def _resized(pixels, width, height, resample=Image.Resampling.LANCZOS):
    return np.asarray(Image.fromarray(pixels).resize((width, height), resample))


@pytest.fixture
def folder(tmp_path):
    """Square images in PNG, JPEG, WebP, BMP, grayscale and RGBA, in nested folders."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    pixels = {
        "b/1.png": save_image(root / "b/1.png", random_image(rng, SIDE, SIDE)),
        "a/0.bmp": save_image(root / "a/0.bmp", random_image(rng, SIDE, SIDE)),
        "gray.png": save_image(root / "gray.png", random_image(rng, SIDE, SIDE, 1)),
        "rgba.png": save_image(root / "rgba.png", random_image(rng, SIDE, SIDE, 4)),
        "c/photo.jpg": save_image(root / "c/photo.jpg", _stripes(SIDE, SIDE), quality=95),
        "c/photo.webp": save_image(root / "c/photo.webp", _stripes(SIDE, SIDE), lossless=True),
    }
    (root / "notes.txt").write_text("not an image, not listed")
    save_image(root / ".hidden/x.png", random_image(rng, SIDE, SIDE))
    return root, pixels


def _items(source):
    return [source[i] for i in range(len(source))]


def test_folder_order_pixels_and_colour(folder):
    root, pixels = folder
    source = ImageFolderSource(root, SIDE)
    assert source.names == ["a/0.bmp", "b/1.png", "c/photo.jpg", "c/photo.webp", "gray.png", "rgba.png"]
    assert len(source) == 6 and source.num_classes == 0 and source.shape == (SIDE, SIDE, 3)
    items = _items(source)
    for item in items:
        assert item["image"].dtype == np.uint8 and item["image"].shape == (SIDE, SIDE, 3)
        assert item["label"] == 0 and item["label"].dtype == np.int32
    np.testing.assert_array_equal(items[0]["image"], pixels["a/0.bmp"])
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
    expected = np.asarray(Image.fromarray(pixels["a/0.bmp"]).convert("L"))
    np.testing.assert_array_equal(source[0]["image"][..., 0], expected)


def test_zip_matches_folder_and_survives_pickle(folder, tmp_path):
    root, _ = folder
    archive = zip_folder(
        root, tmp_path / "images.zip", zipfile.ZIP_DEFLATED, extra=[("__MACOSX/a/._0.png", b"resource fork")]
    )
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


def test_wrong_size_without_transform_names_the_file_even_with_skip_bad(folder):
    root, _ = folder
    save_image(root / "wide.png", _stripes(SIDE, 40))
    for skip_bad in (False, True):
        source = ImageFolderSource(root, SIDE, skip_bad=skip_bad)
        with pytest.raises(DataError, match=r"wide\.png is 40x24, not 24x24; .*resize") as error:
            source[source.names.index("wide.png")]
        assert not isinstance(error.value, BadImageError)


def test_resize_ignores_the_aspect_ratio(tmp_path):
    wide = save_image(tmp_path / "wide.png", _stripes(SIDE, 40))
    for resize_filter, resample in (("box", Image.Resampling.BOX), ("lanczos", Image.Resampling.LANCZOS)):
        image = ImageFolderSource(tmp_path, 8, "resize", resize_filter=resize_filter)[0]["image"]
        np.testing.assert_array_equal(image, _resized(wide, 8, 8, resample))
    assert (image[:, 0] == [255, 0, 0]).all() and (image[:, -1] == [0, 0, 255]).all()  # nothing cropped


def test_center_crop_non_square(tmp_path):
    stripes = save_image(tmp_path / "wide.png", _stripes(SIDE, 48))  # 12 red, 24 green, 12 blue columns
    same_size = ImageFolderSource(tmp_path, SIDE, "center-crop")[0]["image"]
    np.testing.assert_array_equal(same_size, stripes[:, 12:36])
    assert (same_size == [0, 255, 0]).all()
    resized = ImageFolderSource(tmp_path, 8, "center-crop", resize_filter="box")[0]["image"]
    np.testing.assert_array_equal(resized, _resized(stripes[:, 12:36], 8, 8, Image.Resampling.BOX))
    odd = save_image(tmp_path / "odd.png", random_image(np.random.default_rng(2), SIDE, SIDE + 3))
    crops = ImageFolderSource(tmp_path, SIDE, "center-crop")
    odd_crop = crops[crops.names.index("odd.png")]["image"]
    np.testing.assert_array_equal(odd_crop, odd[:, 1 : SIDE + 1])  # offset rounds down, as in StyleGAN2-ADA


def test_center_crop_wide_keeps_input_rows_and_letterboxes(tmp_path):
    """StyleGAN2-ADA's rule: keep round(width * H / W) middle rows of the input, all columns (see the parity test)."""
    pixels = save_image(tmp_path / "a.png", random_image(np.random.default_rng(3), 40, 64))
    source = ImageFolderSource(tmp_path, (32, 16), "center-crop-wide", resize_filter="box")
    image = source[0]["image"]
    assert source.shape == image.shape == (32, 32, 3)
    kept = pixels[10:30]  # round(32 * 40 / 64) = 20 rows of the 64-pixel-wide input, not 32 as the aspect would give
    np.testing.assert_array_equal(image[8:24], _resized(kept, 32, 16, Image.Resampling.BOX))
    assert (image[:8] == 0).all() and (image[24:] == 0).all()


def test_unfit_images_for_center_crop_wide(tmp_path):
    save_image(tmp_path / "a.png", _stripes(40, 64))
    save_image(tmp_path / "b_narrow.png", _stripes(40, 30))
    save_image(tmp_path / "c_short.png", _stripes(20, 64))  # keeps round(32 * 20 / 64) = 10 rows < 16
    source = ImageFolderSource(tmp_path, (32, 16), "center-crop-wide")
    with pytest.raises(UnfitImageError, match=r"b_narrow\.png is 30x40, too small for the 32x16 center-crop-wide"):
        source[1]
    with pytest.raises(UnfitImageError, match=r"c_short\.png is 64x20, too small"):
        source[2]
    replacing = ImageFolderSource(tmp_path, (32, 16), "center-crop-wide", skip_bad=True)
    np.testing.assert_array_equal(replacing[1]["image"], source[0]["image"])  # wraps around to a.png


@pytest.fixture
def with_bad_items(tmp_path):
    """Six images of which three are bad: corrupt, truncated, 16-bit; and a zip of them with a bad CRC member."""
    rng = np.random.default_rng(4)
    root = tmp_path / "mixed"
    good = {i: save_image(root / f"{i}.png", random_image(rng, SIDE, SIDE)) for i in (0, 3, 5)}
    (root / "1.png").write_bytes(b"\x89PNG garbage")
    png = encode_image(random_image(rng, SIDE, SIDE), "png")
    (root / "2.png").write_bytes(png[: len(png) // 2])
    save_image(root / "4.png", rng.integers(0, 1 << 16, (SIDE, SIDE), np.uint16))
    (root / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", i] for i in range(6)]}))
    archive = zip_folder(root, tmp_path / "mixed.zip")
    corrupt_zip_member(archive, "3.png")
    return root, archive, good


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_bad_items_fail_with_one_line_or_are_replaced_deterministically(with_bad_items, kind, caplog):
    root, archive, good = with_bad_items
    path = root if kind == "folder" else archive
    strict = ImageFolderSource(path, SIDE)
    problems = {1: "is not an image", 2: "cannot be decoded", 4: "has pixel mode I;16", 3: "Bad CRC-32"}
    for index in (1, 2, 4) + ((3,) if kind == "zip" else ()):
        with pytest.raises(BadImageError, match=rf"{index}\.png .*{problems[index]}.*--config\.data\.skip_bad=True"):
            strict[index]
        with pytest.raises(BadImageError) as error:
            strict[index]
        assert "\n" not in str(error.value)
    # The next good index, cyclically; a bad CRC makes 3 bad in the zip only.
    replacement = {0: 0, 1: 3, 2: 3, 3: 3, 4: 5, 5: 5} if kind == "folder" else {0: 0, 1: 5, 2: 5, 3: 5, 4: 5, 5: 5}
    with caplog.at_level(logging.WARNING):
        first = ImageFolderSource(path, SIDE, skip_bad=True)
        items = [first[i] for i in (*range(6), *range(6))]
    for i, item in enumerate(items):
        np.testing.assert_array_equal(item["image"], good[replacement[i % 6]])
        assert item["label"] == replacement[i % 6]
    bad = sorted(i for i in range(6) if replacement[i] != i)
    logged = [r.getMessage() for r in caplog.records if "Bad image" in r.getMessage()]
    assert [m.split()[2] for m in logged] == [f"{i}.png" for i in bad]  # each once, with its problem
    assert all(problems[int(m.split()[2][0])] in m for m in logged)
    resumed = ImageFolderSource(path, SIDE, skip_bad=True)  # a new process after a restart, reading in another order
    for i in reversed(range(6)):
        np.testing.assert_array_equal(resumed[i]["image"], items[i]["image"])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(first))[2]["image"], items[2]["image"])


def test_all_bad(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    (tmp_path / "b.png").write_bytes(b"junk")
    source = ImageFolderSource(tmp_path, SIDE, skip_bad=True)
    with pytest.raises(DataError, match="All 2 images .* are bad"):
        source[1]


def test_labels_from_dataset_json(folder, tmp_path):
    root, _ = folder
    names = ImageFolderSource(root, SIDE).names
    table = [[name, i % 3] for i, name in enumerate(names)] + [["elsewhere.png", 4]]
    (root / "dataset.json").write_text(json.dumps({"labels": table}))
    source = ImageFolderSource(root, SIDE)
    assert source.num_classes == 5
    assert [int(source[i]["label"]) for i in range(len(source))] == [0, 1, 2, 0, 1, 2]
    assert ImageFolderSource(zip_folder(root, tmp_path / "labelled.zip"), SIDE)[2]["label"] == 2
    unlabelled = ImageFolderSource(root, SIDE, labels_from=None)
    assert unlabelled.num_classes == 0 and unlabelled[2]["label"] == 0
    (root / "dataset.json").write_text(json.dumps({"labels": table[1:]}))
    with pytest.raises(DataError, match=r"a/0\.bmp has no label"):
        ImageFolderSource(root, SIDE)


def test_max_images(folder):
    root, _ = folder
    assert ImageFolderSource(root, SIDE, max_images=2).names == ["a/0.bmp", "b/1.png"]


def test_lmdb_folder_in_key_order(tmp_path):
    pytest.importorskip("lmdb")
    rng = np.random.default_rng(5)
    values = {
        b"f00d": encode_image(random_image(rng, 30, 40), "webp", quality=90),
        b"0a1b": encode_image(random_image(rng, 40, 30), "jpeg", quality=90),
        b"beef": b"not an image",
    }
    write_lmdb(tmp_path / "cat_lmdb", values)
    source = ImageFolderSource(tmp_path / "cat_lmdb", 16, "center-crop", skip_bad=True)
    assert source.names == ["0a1b", "beef", "f00d"] and source.num_classes == 0
    for index, key in ((0, b"0a1b"), (1, b"f00d"), (2, b"f00d")):
        decoded = np.asarray(Image.open(io.BytesIO(values[key])).convert("RGB"))
        side = min(decoded.shape[:2])
        top, left = (decoded.shape[0] - side) // 2, (decoded.shape[1] - side) // 2
        np.testing.assert_array_equal(
            source[index]["image"], _resized(decoded[top : top + side, left : left + side], 16, 16)
        )
    reopened = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(reopened[0]["image"], source[0]["image"])
    with pytest.raises(BadImageError, match=r"beef is not an image"):
        ImageFolderSource(tmp_path / "cat_lmdb", 16, "center-crop")[1]


def test_lmdb_without_the_package_and_user_errors(tmp_path, monkeypatch):
    (tmp_path / "cat_lmdb").mkdir()
    (tmp_path / "cat_lmdb/data.mdb").write_bytes(b"")
    monkeypatch.setattr(lmdb_store, "lmdb", None)
    with pytest.raises(DataError, match=r"needs the lmdb package; install it: pip install -e \.\[lmdb\]"):
        ImageFolderSource(tmp_path / "cat_lmdb", SIDE)
    (tmp_path / "cat_lmdb/data.mdb").unlink()
    with pytest.raises(DataError, match="named like an LSUN LMDB folder but holds no data.mdb"):
        ImageFolderSource(tmp_path / "cat_lmdb", SIDE)
    with pytest.raises(DataError, match="does not exist"):
        ImageFolderSource(tmp_path / "missing", SIDE)
    with pytest.raises(DataError, match="No images"):
        ImageFolderSource(tmp_path, SIDE)
    with pytest.raises(DataError, match="Unknown transform"):
        ImageTransform.create(SIDE, "center")
