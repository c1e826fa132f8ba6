"""The dataset tool and the array_record source: round trips, bad files, options, CLI."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from clr_gan_jax.data.array_record_source import ArrayRecordImageSource
from clr_gan_jax.data.dataset_tool import convert_dataset
from clr_gan_jax.data.image_files import ImageFolderSource
from clr_gan_jax.data.image_transforms import BadImageError, DataError

SIDE = 16
NUM_IMAGES = 7


@pytest.fixture
def labelled(tmp_path):
    """Seven labelled PNG/JPEG images (one grayscale) in two folders, with a StyleGAN2-ADA dataset.json."""
    rng = np.random.default_rng(1)
    root = tmp_path / "labelled"
    table = []
    for i in range(NUM_IMAGES):
        name = f"{i % 2}/img{i}.{'jpg' if i == 3 else 'png'}"
        shape = (SIDE, SIDE) if i == 5 else (SIDE, SIDE, 3)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, np.uint8)).save(root / name)
        table.append([name, i % 4])
    (root / "dataset.json").write_text(json.dumps({"labels": table}))
    return root


def _items(source):
    return [source[i] for i in range(len(source))]


def test_round_trip_matches_direct_reading_of_folder_and_zip(labelled, tmp_path):
    meta = convert_dataset(labelled, tmp_path / "shards", num_shards=3)
    shards = ArrayRecordImageSource(tmp_path / "shards")
    folder = ImageFolderSource(labelled)
    archive = tmp_path / "labelled.zip"
    with zipfile.ZipFile(archive, "w") as z:  # stored, as StyleGAN2-ADA writes them
        for path in sorted(labelled.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(labelled).as_posix())
    zipped = ImageFolderSource(archive)
    assert len(shards) == len(folder) == len(zipped) == meta["count"] == NUM_IMAGES
    assert [s["count"] for s in meta["shards"]] == [3, 3, 1]
    assert shards.shape == (SIDE, SIDE, 3) and shards.num_classes == folder.num_classes == 4
    for from_shards, from_folder, from_zip in zip(_items(shards), _items(folder), _items(zipped)):
        assert from_shards["image"].dtype == np.uint8 and from_shards["label"].dtype == np.int32
        np.testing.assert_array_equal(from_shards["image"], from_folder["image"])
        np.testing.assert_array_equal(from_zip["image"], from_folder["image"])
        assert from_shards["label"] == from_folder["label"] == from_zip["label"]
    assert [int(item["label"]) for item in _items(shards)] == [0, 2, 0, 2, 1, 3, 1]  # sorted: 0/* then 1/*
    gray = folder.names.index("1/img5.png")
    assert (shards[gray]["image"] == shards[gray]["image"][..., :1]).all()  # grayscale expanded
    assert meta["options"]["transform"] == "none" and meta["skipped"] == []


def test_bad_file_stops_and_leaves_nothing(labelled, tmp_path):
    (labelled / "1/zz_corrupt.png").write_bytes(b"not a png")
    with pytest.raises(BadImageError, match=r"1/zz_corrupt\.png is not an image.*--skip-bad"):
        convert_dataset(labelled, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled"]


def test_skip_bad_counts_and_lists(labelled, tmp_path):
    (labelled / "1/zz_corrupt.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((SIDE, 2 * SIDE, 3), np.uint8)).save(labelled / "0/wide.png")
    meta = convert_dataset(labelled, tmp_path / "out", skip_bad=True)
    assert meta["count"] == NUM_IMAGES
    assert [s["name"] for s in meta["skipped"]] == ["0/wide.png", "1/zz_corrupt.png"]
    assert "32x16, not 16x16" in meta["skipped"][0]["reason"]
    assert json.loads((tmp_path / "out/dataset.json").read_text())["skipped"] == meta["skipped"]
    assert len(ArrayRecordImageSource(tmp_path / "out")) == NUM_IMAGES


def test_max_images_and_center_crop_with_worker_processes(labelled, tmp_path):
    (labelled / "0/img1_corrupt.png").write_bytes(b"not a png")  # sorts second
    options = dict(resolution=8, transform="center-crop", resize_filter="box", max_images=4, skip_bad=True)
    meta = convert_dataset(labelled, tmp_path / "out", workers=2, **options)
    shards = ArrayRecordImageSource(tmp_path / "out")
    direct = ImageFolderSource(labelled, **options)
    assert meta["count"] == len(shards) == len(direct) == 4 and shards.shape == (8, 8, 3)
    assert [s["name"] for s in meta["skipped"]] == ["0/img1_corrupt.png"]
    assert direct.names == ["0/img0.png", "0/img2.png", "0/img4.png", "0/img6.png"]
    for from_shards, from_folder in zip(_items(shards), _items(direct)):
        np.testing.assert_array_equal(from_shards["image"], from_folder["image"])


def test_one_channel_and_user_errors(labelled, tmp_path):
    meta = convert_dataset(labelled, tmp_path / "gray", channels=1)
    assert meta["shape"] == [SIDE, SIDE, 1]
    assert ArrayRecordImageSource(tmp_path / "gray")[0]["image"].shape == (SIDE, SIDE, 1)
    with pytest.raises(DataError, match="is not empty"):
        convert_dataset(labelled, tmp_path / "gray")
    with pytest.raises(DataError, match="does not exist"):
        convert_dataset(tmp_path / "nowhere", tmp_path / "new")
    with pytest.raises(DataError, match="needs --resolution"):
        convert_dataset(labelled, tmp_path / "new", transform="center-crop")


def test_shard_folder_errors(labelled, tmp_path):
    with pytest.raises(DataError, match=r"dataset\.json not found.*dataset_tool"):
        ArrayRecordImageSource(tmp_path)
    with pytest.raises(DataError, match="not a clr_gan_jax shard index.*ImageFolderSource"):
        ArrayRecordImageSource(labelled)  # a StyleGAN2-ADA labels file
    convert_dataset(labelled, tmp_path / "out", num_shards=2)
    os.remove(tmp_path / "out/images.array_record-00001-of-00002")
    with pytest.raises(DataError, match="images.array_record-00001-of-00002"):
        ArrayRecordImageSource(tmp_path / "out")


def _run_tool(*args):
    command = [sys.executable, "-m", "clr_gan_jax.data.dataset_tool", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_command_line(labelled, tmp_path):
    done = _run_tool(
        f"--source={labelled}", f"--dest={tmp_path / 'out'}", "--width=8", "--height=8",
        "--transform=center-crop", "--resize-filter=box", "--max-images=5", "--num-shards=2", "--workers=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5/5 images" in done.stderr and "images/s" in done.stderr
    meta = json.loads((tmp_path / "out/dataset.json").read_text())
    assert meta["count"] == 5 and meta["shape"] == [8, 8, 3] and len(meta["shards"]) == 2
    Image.fromarray(np.zeros((SIDE, 2 * SIDE, 3), np.uint8)).save(labelled / "0/wide.png")
    failed = _run_tool(f"--source={labelled}", f"--dest={tmp_path / 'failed'}", "--workers=1")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("dataset_tool: 0/wide.png is 32x16, not 16x16")
    assert "Traceback" not in failed.stderr and not (tmp_path / "failed").exists()
