"""Helpers shared by test files: tiny configs, the CLI in a subprocess, restored states, and small
image files, zips (one with a corrupt member) and LMDB folders."""

import importlib.util
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import zipfile

import jax
import numpy as np
from PIL import Image

from clr_gan_jax import build, checkpoints, sharding, train
from clr_gan_jax.default_config import base_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A bias feeding straight into BatchNorm (G's first layer, as in the zoo's PyTorch model) has a
# mathematically zero gradient; Adam turns its rounding noise into lr-sized random steps, so it
# differs between device counts while changing no output (the running mean of the BatchNorm after it
# absorbs the same difference). Everything else must agree.
BIASES_BEFORE_BATCHNORM = ("['Project_0']['bias']", "['BatchNorm_0']['mean']")


def ring8_config():
    """A small Ring8 MLP run with every D and G term: adversarial, R1, restoration, reconstruction."""
    c = base_config()
    c.data.name = "ring8"
    c.model.update(arch="mlp", z_dim=8, hidden=32, depth=1, batch_norm=False)
    c.train.update(
        steps=20, batch_size=32, n_critic=2, log_every=10, sample_every=10, checkpoint_every=10, num_samples=8
    )
    return c


def digits_config():
    """A DCGAN + CLR on 8x8 digits, small enough to compile in seconds."""
    c = base_config()
    c.data.resolution = 8
    c.model.update(z_dim=8, g_width=16, d_width=16)
    c.train.update(steps=8, batch_size=16, log_every=4, sample_every=8, checkpoint_every=4)
    return c


MICRO = {  # StyleGAN2 + CLR at 8 px: 16 channels, z = w = the epilogue's 16 features
    "data.resolution": 8,
    "model.z_dim": 16,
    "model.w_dim": 16,
    "model.mapping_layers": 1,
    "model.channel_base": 64,
    "model.channel_max": 16,
    "model.mbstd_group_size": 2,
    "train.batch_size": 8,
    "train.g_reg_interval": 4,
    "train.d_reg_interval": 4,
    "train.ema_kimg": 0.02,
    "train.ema_rampup": 0.5,
    "loss.r1_gamma": 1.0,
    "loss.pl_weight": 2.0,
    "loss.style_mixing_prob": 0.9,
    "optim.g_lr": 0.0025,
    "optim.d_lr": 0.0025,
    "eval.metrics": "",
}


def micro_config(variant: str = "tiny_clr", **overrides):
    """``configs/stylegan2.py:<variant>`` shrunk to `MICRO` (then ``overrides``, by flattened name)."""
    config = load_config_file("configs/stylegan2.py", variant)
    config.update_from_flattened_dict({**MICRO, **overrides})
    return config


def tiny_zoo(config):
    """A zoo (dcgan) config shrunk to 8x8 images, widths of 16, z of 8, batch 8 and one D update per step."""
    config.data.resolution = 8
    config.model.update(g_width=16, d_width=16, z_dim=8)
    config.train.update(batch_size=8, n_critic=1)
    return config


def train_steps(config, images: np.ndarray, labels: np.ndarray, steps: int = 2):
    """``steps`` jitted train steps of ``config`` on one device, each on the same batch: (state, each step's
    metrics)."""
    mesh = sharding.make_mesh(jax.devices()[:1])
    experiment = build.build(config, 1)
    state = build.initial_state(experiment, mesh)
    step = build.train_step_fn(experiment, mesh)
    history = []
    for i in range(steps):
        batch = train.step_batch({"image": images, "label": labels}, 1, mesh)
        state, metrics = step(state, batch, experiment.method.active_phases(i))
        history.append(metrics)
    return state, history


def load_config_file(path: str, *args):
    """``get_config(*args)`` of a config file, by path relative to the repository."""
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], os.path.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*args)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_jsonl(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def run_cli(*args, env_extra=None, script=None, timeout=600):
    """``python -m clr_gan_jax.main ARGS`` (or ``python -c SCRIPT ARGS``) from the repository root."""
    env = {**os.environ, **(env_extra or {})}
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "clr_gan_jax.main", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def restore_state(config, workdir: str, step: int):
    """The train state of ``config`` saved at ``step`` in ``workdir`` (or ``workdir/best``), as NumPy arrays."""
    experiment = build.build(config)
    checkpointer = checkpoints.Checkpointer(workdir, None)
    state = checkpointer.restore(step, build.abstract_state(experiment, sharding.make_mesh()))
    checkpointer.close()
    return jax.device_get(state)


def assert_trees_equal(a, b, skip=(), rtol: float = 0.0):
    """Equality of two pytrees of arrays (leaves whose path ends with one of ``skip`` are not compared): bitwise, or
    within ``rtol`` of each leaf's largest magnitude where the two come from differently compiled programs, whose sums
    XLA may order differently."""
    paths_a, leaves_b = jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)
    assert len(paths_a) == len(leaves_b)
    for (path, x), y in zip(paths_a, leaves_b):
        if not jax.tree_util.keystr(path).endswith(tuple(skip)):
            if rtol:
                scale = float(np.abs(np.asarray(y)).max(initial=0.0))
                np.testing.assert_allclose(x, y, rtol=0, atol=rtol * scale, err_msg=jax.tree_util.keystr(path))
            else:
                np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def save_image(path, pixels: np.ndarray, **kwargs) -> np.ndarray:
    """Writes ``pixels`` to ``path`` (format from the extension) and returns them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return pixels


def encode_image(pixels: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def random_image(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, np.uint8)


def zip_folder(root, dest, compression=zipfile.ZIP_STORED, extra=()):
    """Zips every file under ``root`` by its relative path (stored, as StyleGAN2-ADA writes), plus ``extra``."""
    with zipfile.ZipFile(dest, "w", compression=compression) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
        for name, data in extra:
            archive.writestr(name, data)
    return dest


def corrupt_zip_member(archive, name: str) -> None:
    """Flips one byte in the middle of the stored data of ``name``: its CRC no longer matches."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(name)
    with open(archive, "r+b") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
        position = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
        file.seek(position)
        byte = file.read(1)[0]
        file.seek(position)
        file.write(bytes([byte ^ 0xFF]))


def write_lmdb(folder, values: dict[bytes, bytes]) -> None:
    """An LMDB folder (data.mdb, lock.mdb) holding ``values`` by key, as LSUN's downloads."""
    import lmdb

    folder.mkdir(parents=True, exist_ok=True)
    with lmdb.open(str(folder), map_size=1 << 26) as environment, environment.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)


DATA = pathlib.Path(__file__).parent / "data"


def load_fixture(name: str) -> dict[str, np.ndarray]:
    """All arrays of ``tests/data/<name>`` (no pickles)."""
    with np.load(DATA / name, allow_pickle=False) as data:
        return dict(data)


def nhwc(x: np.ndarray) -> np.ndarray:
    """PyTorch NCHW activations -> NHWC."""
    return np.transpose(x, (0, 2, 3, 1))


def hwio(w: np.ndarray) -> np.ndarray:
    """PyTorch OIHW convolution weights -> HWIO."""
    return np.transpose(w, (2, 3, 1, 0))


def assert_close(actual, expected, tol: float = 2e-5) -> None:
    """Equal up to float32 rounding: |actual - expected| <= tol * max(1, max |expected|)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * max(1.0, float(np.abs(expected).max())))


def state_dict(fixture: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The PyTorch state dict stored in a fixture under ``<prefix>/sd/<key>``."""
    head = f"{prefix}/sd/"
    return {k[len(head) :]: v for k, v in fixture.items() if k.startswith(head)}
