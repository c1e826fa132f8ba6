"""python -m clr_gan_jax.augment: parity with the official pipe through PNG files, output names and sizes, and
one-line errors for bad input."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from clr_gan_jax.augment.folder import augment_folder
from clr_gan_jax.errors import UserError
from clr_gan_jax.images import to_uint8

DATA = pathlib.Path(__file__).parent / "data"


def write_images(folder: pathlib.Path, images: np.ndarray, names) -> None:
    for image, name in zip(images, names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(folder / name)


@pytest.mark.parametrize("mode", ["rgb", "gray"])
def test_debug_percentile_output_matches_official_pipe_within_one_level(tmp_path, mode):
    data = np.load(DATA / "augment_bgcf.npz", allow_pickle=False)
    names = [f"{i}.png" for i in range(len(data[f"{mode}_input"]))]
    write_images(tmp_path / "in", data[f"{mode}_input"], names)
    written = augment_folder(tmp_path / "in", tmp_path / "out", "bgcf", debug_percentile=0.3, batch_size=4)
    assert written == names
    expected = to_uint8(data[f"{mode}_q30"])  # the official AugmentPipe's float output, rounded as the tool does
    for name, official in zip(names, expected):
        with Image.open(tmp_path / "out" / name) as image:
            assert image.mode == ("RGB" if mode == "rgb" else "L")
            pixels = np.asarray(image).reshape(official.shape)
        assert np.abs(pixels.astype(int) - official).max() <= 1


def test_writes_every_image_as_png_under_its_name(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    write_images(tmp_path / "in", images, ["a.png", "b.jpg", "sub/c.webp"])
    written = augment_folder(tmp_path / "in", tmp_path / "out", "color", p=1.0, seed=3)
    assert written == ["a.png", "b.png", "sub/c.png"]
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == written
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert (out.format, out.size, out.mode) == ("PNG", (16, 16), "RGB")
        assert not np.array_equal(np.asarray(out), images[0])


@pytest.mark.parametrize(
    "files, pipe, message",
    [
        (None, "bgc", "does not exist"),
        ({}, "bgc", "No images under"),
        ({"a.png": (16, 16)}, "bgcx", "unknown name 'bgcx'; known: blit"),
        ({"a.png": (16, 16), "b.png": (32, 32)}, "bgc", "b.png is 32x32 but a.png is 16x16"),
        ({"a.png": (16, 8)}, "bgc", "take square images"),
        ({"a.png": (16, 16), "a.jpg": (16, 16)}, "bgc", "a.jpg and a.png would both be written as a.png"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, files, pipe, message):
    folder = tmp_path / "in"
    if files is not None:
        folder.mkdir()
        for name, (width, height) in files.items():
            Image.new("RGB", (width, height)).save(folder / name)
    with pytest.raises(UserError, match=message) as error:
        augment_folder(folder, tmp_path / "out", pipe)
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()


def test_writing_into_the_input_folder_is_refused(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(UserError, match="would overwrite the inputs"):
        augment_folder(tmp_path, tmp_path, "bgc")


def test_command_line_reports_errors_in_one_line(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    command = [sys.executable, "-m", "clr_gan_jax.augment", f"--images={tmp_path}", f"--outdir={tmp_path / 'out'}"]
    failed = subprocess.run(
        [*command, "--pipe=bgcx", "--p=0.5"], capture_output=True, text=True, timeout=120, check=False
    )
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("augment: augment pipe: unknown name 'bgcx'")
    assert "Traceback" not in failed.stderr
