"""The dataset tool and the array_record source: official parity, sources, bad data, options, command line, signals."""

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from absl import flags
from helpers import corrupt_zip_member, encode_image, random_image, save_image, write_lmdb, zip_folder
from PIL import Image

from clr_gan_jax.data import dataset_tool
from clr_gan_jax.data.array_record_source import ArrayRecordImageSource
from clr_gan_jax.data.dataset_tool import convert_dataset, convert_from_flags, define_flags
from clr_gan_jax.data.image_files import ImageFolderSource
from clr_gan_jax.data.image_transforms import BadImageError, DataError

SIDE = 16
NUM_IMAGES = 7
OFFICIAL = pathlib.Path(__file__).parent / "data/official_dataset_tool.npz"


def _run_flags(*args) -> dict:
    """The tool as the command line runs it, in this process: ``args`` parsed by the tool's own flags."""
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["dataset_tool", *args])
    return convert_from_flags(flag_values)


def _read_zip(path):
    """(names, labels, images) of a StyleGAN2-ADA dataset zip, in its dataset.json order."""
    with zipfile.ZipFile(path) as archive:
        table = json.loads(archive.read("dataset.json"))["labels"]
        images = [np.asarray(Image.open(io.BytesIO(archive.read(name)))) for name, _ in table]
    return [name for name, _ in table], [label for _, label in table], np.stack(images)


def _items(source):
    return [source[i] for i in range(len(source))]


@pytest.fixture
def labelled(tmp_path):
    """Seven labelled PNG/JPEG images (one grayscale) in two folders, with a StyleGAN2-ADA dataset.json."""
    rng = np.random.default_rng(1)
    root = tmp_path / "labelled"
    table = []
    for i in range(NUM_IMAGES):
        name = f"{i % 2}/img{i}.{'jpg' if i == 3 else 'png'}"
        save_image(root / name, random_image(rng, SIDE, SIDE, 1 if i == 5 else 3))
        table.append([name, i % 4])
    (root / "dataset.json").write_text(json.dumps({"labels": table}))
    return root


@pytest.fixture(scope="module")
def official():
    with np.load(OFFICIAL, allow_pickle=False) as data:
        return dict(data)


@pytest.mark.parametrize(
    "run",
    ["resize_lanczos", "resize_box", "center_crop", "center_crop_wide", "center_crop_wide_max5", "zip_center_crop_box"],
)
def test_matches_the_official_tool(official, run, tmp_path):
    """Same command line as the official dataset_tool.py run (tests/data/README.md): same names, labels, pixels."""
    folder = tmp_path / "source"
    names = official["source_names"].tolist()
    for i, name in enumerate(names):
        save_image(folder / name, official[f"source_{i}"])
    (folder / "dataset.json").write_text(json.dumps({"labels": [[name, i] for i, name in enumerate(names)]}))
    source = folder if str(official[f"{run}_source"]) == "folder" else zip_folder(folder, tmp_path / "source.zip")
    args = [f"--source={source}", *official[f"{run}_args"].tolist()]
    meta = _run_flags(*args, f"--dest={tmp_path / 'out.zip'}")
    out_names, out_labels, out_images = _read_zip(tmp_path / "out.zip")
    assert out_names == official[f"{run}_names"].tolist()
    assert out_labels == official[f"{run}_labels"].tolist()
    np.testing.assert_array_equal(out_images, official[f"{run}_images"])
    assert meta["count"] == len(out_names) and len(meta["dropped"]) + meta["count"] <= len(names)
    _run_flags(*args, f"--dest={tmp_path / 'shards'}")
    shards = ArrayRecordImageSource(tmp_path / "shards")
    np.testing.assert_array_equal(np.stack([item["image"] for item in _items(shards)]), official[f"{run}_images"])
    assert [int(item["label"]) for item in _items(shards)] == official[f"{run}_labels"].tolist()


def test_round_trip_matches_direct_reading_of_folder_and_zip(labelled, tmp_path):
    meta = convert_dataset(labelled, tmp_path / "shards", num_shards=3)
    shards = ArrayRecordImageSource(tmp_path / "shards")
    folder = ImageFolderSource(labelled)
    zipped = ImageFolderSource(zip_folder(labelled, tmp_path / "labelled.zip"))
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
    assert meta["options"]["transform"] == "none" and meta["skipped"] == [] == meta["dropped"]


def test_official_zip_source_keeps_its_labels(tmp_path):
    """A StyleGAN2-ADA dataset zip (stored PNGs, dataset.json labels) converts to shards and to a zip, labels kept."""
    rng = np.random.default_rng(2)
    archive, table, pixels = tmp_path / "official.zip", [], []
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(5):
            name = f"{i // 1000:05d}/img{i:08d}.png"
            pixels.append(random_image(rng, SIDE, SIDE))
            z.writestr(name, encode_image(pixels[-1], "png", compress_level=0))
            table.append([name, (3 * i) % 4])
        z.writestr("dataset.json", json.dumps({"labels": table}))
    meta = _run_flags(f"--source={archive}", f"--dest={tmp_path / 'shards'}", "--max-images=4")
    shards = ArrayRecordImageSource(tmp_path / "shards")
    assert meta["count"] == len(shards) == 4 and shards.num_classes == 4
    assert [int(item["label"]) for item in _items(shards)] == [0, 3, 2, 1]
    np.testing.assert_array_equal(np.stack([item["image"] for item in _items(shards)]), pixels[:4])
    _run_flags(f"--source={archive}", f"--dest={tmp_path / 'again.zip'}")
    names, labels, images = _read_zip(tmp_path / "again.zip")
    assert [[n, label] for n, label in zip(names, labels)] == table
    np.testing.assert_array_equal(images, pixels)


def test_lmdb_source(tmp_path):
    """An LSUN-style LMDB folder (WebP and JPEG values), in key order, with --max_images."""
    pytest.importorskip("lmdb")
    rng = np.random.default_rng(3)
    values = {key: encode_image(random_image(rng, 24, 30), fmt) for key, fmt in ((b"b2", "webp"), (b"a1", "jpeg"))}
    values[b"c3"] = encode_image(random_image(rng, 30, 24), "webp")
    write_lmdb(tmp_path / "cat_lmdb", values)
    common = ("--transform=center-crop", "--width=8", "--height=8", "--max_images=2")
    meta = _run_flags(f"--source={tmp_path / 'cat_lmdb'}", f"--dest={tmp_path / 'out'}", *common)
    shards = ArrayRecordImageSource(tmp_path / "out")
    direct = ImageFolderSource(tmp_path / "cat_lmdb", 8, "center-crop", max_images=2)
    assert meta["count"] == len(shards) == 2 and direct.names == ["a1", "b2"] and shards.num_classes == 0
    for from_shards, from_lmdb, key in zip(_items(shards), _items(direct), (b"a1", b"b2")):
        np.testing.assert_array_equal(from_shards["image"], from_lmdb["image"])
        decoded = np.asarray(Image.open(io.BytesIO(values[key])).convert("RGB"))[:, 3:27]
        np.testing.assert_array_equal(
            from_shards["image"], np.asarray(Image.fromarray(decoded).resize((8, 8), Image.Resampling.LANCZOS))
        )


@pytest.fixture
def with_bad_data(labelled, tmp_path):
    """``labelled`` plus a corrupt file, a non-square and a 16-bit image; a zip of it with a bad-CRC member."""
    (labelled / "1/zz_corrupt.png").write_bytes(b"not a png")
    save_image(labelled / "0/wide.png", random_image(np.random.default_rng(4), SIDE, 2 * SIDE))
    save_image(labelled / "0/sixteen.png", np.full((SIDE, SIDE), 40000, np.uint16))
    table = json.loads((labelled / "dataset.json").read_text())["labels"]
    table += [["1/zz_corrupt.png", 0], ["0/wide.png", 1], ["0/sixteen.png", 2]]
    (labelled / "dataset.json").write_text(json.dumps({"labels": table}))
    archive = zip_folder(labelled, tmp_path / "bad.zip")
    corrupt_zip_member(archive, "1/img1.png")
    return labelled, archive


def test_skip_bad_skips_and_lists_only_bad_images(with_bad_data, tmp_path):
    folder, archive = with_bad_data
    bad = ["0/sixteen.png", "1/zz_corrupt.png"]
    for source, skipped, dest in ((folder, bad, "out"), (archive, sorted([*bad, "1/img1.png"]), "out.zip")):
        meta = convert_dataset(source, tmp_path / dest, SIDE, "resize", skip_bad=True)
        assert [s["name"] for s in meta["skipped"]] == skipped and meta["dropped"] == []
        assert meta["count"] == NUM_IMAGES + 3 - len(skipped)  # wide.png is resized, not bad
    reasons = {s["name"]: s["reason"] for s in meta["skipped"]}
    assert "Bad CRC-32" in reasons["1/img1.png"] and "pixel mode I;16" in reasons["0/sixteen.png"]
    assert "is not an image" in reasons["1/zz_corrupt.png"]
    assert json.loads((tmp_path / "out/dataset.json").read_text())["skipped"][0]["name"] == "0/sixteen.png"
    names, _, _ = _read_zip(tmp_path / "out.zip")
    assert len(names) == meta["count"] and "00000/img00000004.png" not in names  # named by source index: gaps


def test_bad_images_stop_with_one_line_and_leave_nothing(with_bad_data, tmp_path):
    folder, _ = with_bad_data
    (folder / "0/sixteen.png").unlink()
    archive = zip_folder(folder, tmp_path / "bad_crc.zip")
    corrupt_zip_member(archive, "1/img1.png")
    cases = [(folder, "out", r"1/zz_corrupt\.png is not an image"), (archive, "out.zip", r"1/img1\.png .*Bad CRC-32")]
    for source, dest, message in cases:
        with pytest.raises(BadImageError, match=rf"{message}.*; remove it, or skip bad images with --skip-bad\.$"):
            convert_dataset(source, tmp_path / dest, SIDE, "resize")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "bad_crc.zip", "labelled"]


def test_max_images_reads_the_first_source_images_in_worker_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset_tool, "_MIN_IMAGES_PER_WORKER", 32)
    get_context, pools = dataset_tool.multiprocessing.get_context, []
    monkeypatch.setattr(
        dataset_tool.multiprocessing, "get_context", lambda method: pools.append(method) or get_context(method)
    )
    rng = np.random.default_rng(5)
    for i in range(70):
        save_image(tmp_path / f"src/{i:03d}.png", random_image(rng, 12, 10))
    (tmp_path / "src/001.png").write_bytes(b"not a png")
    options = {"resize_filter": "box", "max_images": 66, "skip_bad": True}
    meta = convert_dataset(tmp_path / "src", tmp_path / "out", 8, "center-crop", workers=2, **options)
    shards = ArrayRecordImageSource(tmp_path / "out")
    direct = ImageFolderSource(tmp_path / "src", 8, "center-crop", **options)
    assert meta["count"] == len(shards) == 65 and shards.shape == (8, 8, 3) and len(direct) == 66
    assert [s["name"] for s in meta["skipped"]] == ["001.png"] and pools == ["spawn"]
    expected = [direct[i]["image"] for i in range(66) if i != 1]
    np.testing.assert_array_equal(np.stack([item["image"] for item in _items(shards)]), expected)


def test_one_channel_and_user_errors(labelled, tmp_path):
    meta = convert_dataset(labelled, tmp_path / "gray", channels=1)
    assert meta["shape"] == [SIDE, SIDE, 1]
    assert ArrayRecordImageSource(tmp_path / "gray")[0]["image"].shape == (SIDE, SIDE, 1)
    with pytest.raises(DataError, match="is not empty"):
        convert_dataset(labelled, tmp_path / "gray")
    (tmp_path / "taken.zip").write_bytes(b"")
    with pytest.raises(DataError, match="taken.zip exists"):
        convert_dataset(labelled, tmp_path / "taken.zip")
    with pytest.raises(DataError, match="does not exist"):
        convert_dataset(tmp_path / "nowhere", tmp_path / "new")
    with pytest.raises(DataError, match="needs an output size"):
        convert_dataset(labelled, tmp_path / "new", transform="center-crop")
    save_image(labelled / "1/wide.png", random_image(np.random.default_rng(6), SIDE, 2 * SIDE))
    with pytest.raises(DataError, match=r"1/wide\.png is 32x16, not 16x16; .*--width and --height"):
        convert_dataset(labelled, tmp_path / "new", skip_bad=True)  # without a size all must share the first's
    with pytest.raises(DataError, match="Output must be square"):
        _run_flags(f"--source={labelled}", f"--dest={tmp_path / 'new'}", "--width=16", "--height=8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray", "labelled", "taken.zip"]


def test_shard_folder_errors(labelled, tmp_path):
    with pytest.raises(DataError, match=r"dataset\.json not found.*dataset_tool"):
        ArrayRecordImageSource(tmp_path)
    with pytest.raises(DataError, match="not a clr_gan_jax shard index.*ImageFolderSource"):
        ArrayRecordImageSource(labelled)  # a StyleGAN2-ADA labels file
    convert_dataset(labelled, tmp_path / "out", num_shards=2)
    os.remove(tmp_path / "out/images.array_record-00001-of-00002")
    with pytest.raises(DataError, match="images.array_record-00001-of-00002"):
        ArrayRecordImageSource(tmp_path / "out")


# The dataset commands of the official CLR-GAN README, verbatim but for /tmp/ffhq-unpacked; ~ is HOME, the test folder.
SEED_COMMANDS = {
    "ffhq": "--source=/tmp/ffhq-unpacked --dest=~/datasets/",
    "ffhq256": "--source=/tmp/ffhq-unpacked --dest=~/datasets/ --width=256 --height=256 --resize-filter=box",
    "afhq-cat": "--source=~/downloads/afhq/train/cat --dest=~/datasets/",
    "afhq-dog": "--source=~/downloads/afhq/train/dog --dest=~/datasets/",
    "afhq-wild": "--source=~/downloads/afhq/train/wild --dest=~/datasets/",
    "lsun-cat": "--source=~/downloads/lsun/raw/cat_lmdb --dest=~/datasets/ "
    "--transform=center-crop --width=256 --height=256 --max_images=200000",
    "lsun-car": "--source=~/downloads/lsun/raw/car_lmdb --dest=~/datasets/ "
    "--transform=center-crop-wide --width=512 --height=384 --max_images=200000",
}


def _seed_source(command: str, home: pathlib.Path, ffhq: pathlib.Path) -> list[np.ndarray]:
    """Small stand-ins for FFHQ (1024 px PNG, here 288), AFHQ (512 px JPEG, here 40), LSUN (WebP in LMDB)."""
    rng = np.random.default_rng(7)
    if command.startswith("ffhq"):
        return [save_image(ffhq / f"{i:05d}.png", random_image(rng, 288, 288)) for i in range(2)]
    if command.startswith("afhq"):
        folder = home / f"downloads/afhq/train/{command.split('-')[1]}"
        return [save_image(folder / f"flickr_{i}.jpg", random_image(rng, 40, 40)) for i in range(2)]
    sizes = [(260, 300), (300, 270)] if command == "lsun-cat" else [(480, 640), (400, 512), (300, 400)]
    images = [random_image(rng, *size) for size in sizes]
    pytest.importorskip("lmdb")
    lmdb = home / f"downloads/lsun/raw/{command.split('-')[1]}_lmdb"
    write_lmdb(
        lmdb, {f"{i:040x}".encode(): encode_image(image, "webp", lossless=True) for i, image in enumerate(images)}
    )
    return images


@pytest.mark.parametrize("command", SEED_COMMANDS)
def test_seed_commands_verbatim(command, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    ffhq = tmp_path / "ffhq-unpacked"
    images = _seed_source(command, tmp_path, ffhq)
    meta = _run_flags(*SEED_COMMANDS[command].replace("/tmp/ffhq-unpacked", str(ffhq)).split())
    out = ArrayRecordImageSource(tmp_path / "datasets")
    written = np.stack([item["image"] for item in _items(out)])
    if command == "ffhq":
        np.testing.assert_array_equal(written, images)
    elif command == "ffhq256":
        expected = [np.asarray(Image.fromarray(x).resize((256, 256), Image.Resampling.BOX)) for x in images]
        np.testing.assert_array_equal(written, expected)
    elif command.startswith("afhq"):
        expected = [np.asarray(Image.open(path)) for path in sorted((tmp_path / "downloads/afhq").rglob("*.jpg"))]
        np.testing.assert_array_equal(written, expected)
    elif command == "lsun-cat":
        crops = [images[0][:, 20:280], images[1][15:285]]
        expected = [np.asarray(Image.fromarray(x).resize((256, 256), Image.Resampling.LANCZOS)) for x in crops]
        np.testing.assert_array_equal(written, expected)
    else:  # 400 px wide: dropped; 640x480: 384 middle rows squeezed to 512x384; 512x400: all rows to 512x384
        assert [d["name"] for d in meta["dropped"]] == [f"{2:040x}"] and written.shape == (2, 512, 512, 3)
        kept = [images[0][48:432], images[1]]
        letterbox = [np.asarray(Image.fromarray(x).resize((512, 384), Image.Resampling.LANCZOS)) for x in kept]
        np.testing.assert_array_equal(written[:, 64:448], letterbox)
        assert (written[:, :64] == 0).all() and (written[:, 448:] == 0).all()
    assert meta["count"] == len(written) and meta["skipped"] == []


def _tool_command(*args):
    return [sys.executable, "-m", "clr_gan_jax.data.dataset_tool", *args]


def test_command_line(labelled, tmp_path):
    done = subprocess.run(
        _tool_command(
            f"--source={labelled}", f"--dest={tmp_path / 'out'}", "--width=8", "--height=8",
            "--transform=center-crop", "--resize-filter=box", "--max-images=5", "--num-shards=2", "--workers=1",
        ),
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5/5 images" in done.stderr and "images/s" in done.stderr
    meta = json.loads((tmp_path / "out/dataset.json").read_text())
    assert meta["count"] == 5 and meta["shape"] == [8, 8, 3] and len(meta["shards"]) == 2
    (labelled / "1/zz_corrupt.png").write_bytes(b"not a png")
    failed = subprocess.run(
        _tool_command(f"--source={labelled}", f"--dest={tmp_path / 'failed.zip'}", "--resolution=8"),
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("dataset_tool: 1/zz_corrupt.png is not an image")
    assert "Traceback" not in failed.stderr and sorted(p.name for p in tmp_path.iterdir()) == ["labelled", "out"]


# Runs the tool's command line with image reading held up at the third image, so that SIGTERM finds work in flight.
_HELD_UP_TOOL = """
import pathlib, sys, time
from absl import app, flags
from clr_gan_jax.data import dataset_tool
ready = pathlib.Path(sys.argv.pop(1))
load_image = dataset_tool.load_image
def load_image_or_wait(data, name, transform):
    if name == "2.png":
        ready.touch()
        time.sleep(300)
    return load_image(data, name, transform)
dataset_tool.load_image = load_image_or_wait
dataset_tool.define_flags(flags.FLAGS)
app.run(dataset_tool.main)
"""


@pytest.mark.parametrize("dest", ["out", "out.zip"])
def test_sigterm_removes_the_partial_output(tmp_path, dest):
    rng = np.random.default_rng(8)
    for i in range(4):
        save_image(tmp_path / f"src/{i}.png", random_image(rng, SIDE, SIDE))
    ready = tmp_path / "ready"
    args = [f"--source={tmp_path / 'src'}", f"--dest={tmp_path / dest}", "--workers=1"]
    process = subprocess.Popen(
        [sys.executable, "-c", _HELD_UP_TOOL, str(ready), *args], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), process.stderr.read() if process.poll() is not None else "timed out"
        partial = [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]
        assert partial == [f".{dest}.partial-{process.pid}"]  # two images written
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert (
        stderr.strip().splitlines()[-1]
        == f"dataset_tool: stopped by SIGTERM; nothing was written to {tmp_path / dest}."
    )
    assert "Removed the partial output" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready", "src"]
