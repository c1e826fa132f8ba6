"""The training loop end to end: outputs, exact resumption after a kill, divergence, bad input, export."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from clr_gan_jax import checkpoints, export, sharding, steps, train
from clr_gan_jax.default_config import base_config
from clr_gan_jax.validation import UserError, validate_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ring8_config():
    c = base_config()
    c.data.name = "ring8"
    c.model.update(arch="mlp", z_dim=8, hidden=32, depth=1)
    c.train.update(steps=20, batch_size=32, n_critic=2, log_every=10, sample_every=10, checkpoint_every=10, num_samples=8)
    return c


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("ring8"))
    config = ring8_config()
    return config, workdir, train.train_and_evaluate(config, workdir)


def test_run_writes_metrics_samples_checkpoints_and_tensorboard(ring8_run):
    config, workdir, state = ring8_run
    assert int(state.step) == 20
    lines = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [line["step"] for line in lines] == [10, 20]
    for line in lines:
        assert {"d_loss", "g_loss", "d_clr", "g_rec", "d_grad_norm", "g_grad_norm"} <= line.keys()
        assert all(np.isfinite(v) for v in line.values())
    assert lines[1]["steps_per_sec"] > 0 and lines[1]["images_per_sec"] == pytest.approx(
        lines[1]["steps_per_sec"] * 2 * 32
    )
    for step in (10, 20):
        picture = np.asarray(Image.open(os.path.join(workdir, "samples", f"step_{step:07d}.png")))
        assert picture.shape == (512, 512, 3) and (picture[..., 0] > 200).any() and (picture[..., 1] < 60).any()
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["10", "20"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(workdir, "tensorboard")))


def test_export_round_trip(ring8_run, tmp_path):
    config, workdir, state = ring8_run
    generator, variables, step = export.restore_ema_generator(config, workdir)
    assert step == 20
    path = str(tmp_path / "generator.npz")
    export.write_npz(path, variables, config, step)
    with np.load(path, allow_pickle=False) as arrays:
        assert "params/Dense_0/kernel" in arrays.files
    assert json.load(open(tmp_path / "generator.json"))["config"]["model"]["z_dim"] == 8
    samples = export.sample_from_npz(path, num=5, seed=3)
    z = jax.random.normal(jax.random.key(3), (5, 8))
    np.testing.assert_allclose(samples, steps.make_generate(generator)(state.ema, z), atol=1e-6)
    assert samples.shape == (5, 2)


def test_checkpoint_of_another_model_is_refused_and_kept(ring8_run):
    config, workdir, _ = ring8_run
    before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    other = ring8_config()
    other.model.hidden = 64
    other.train.steps = 30
    with pytest.raises(UserError, match=r"different model: model was .*hidden.*32"):
        train.train_and_evaluate(other, workdir)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before


def test_matmul_dtype_may_change_on_resume_but_only_for_dcgan(ring8_run):
    """Parameters are float32 whatever model.matmul_dtype is, so it is not part of a checkpoint's model."""
    config, workdir, _ = ring8_run
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=3)
    changed = config.copy_and_resolve_references()
    changed.model.matmul_dtype = "bfloat16"
    checkpointer.check_compatible(20, changed)
    changed.model.hidden = 64
    with pytest.raises(UserError, match="different model"):
        checkpointer.check_compatible(20, changed)
    checkpointer.close()
    changed.model.hidden = config.model.hidden
    with pytest.raises(UserError, match="matmul_dtype=bfloat16 is for arch=dcgan"):
        validate_config(changed, num_devices=1)


def test_nan_loss_stops_with_step_and_name_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = steps.train_step

    def poisoned(gan, state, reals, sharding=None):
        state, metrics = original(gan, state, reals, sharding)
        return state, {**metrics, "g_loss": jnp.where(state.step >= 15, jnp.nan, metrics["g_loss"])}

    monkeypatch.setattr(steps, "train_step", poisoned)
    config = ring8_config()
    config.train.log_every = 5
    with pytest.raises(train.TrainingDivergedError, match=r"g_loss is nan at step 15.*last good checkpoint is step 10"):
        train.train_and_evaluate(config, str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10"]
    checkpointer = checkpoints.Checkpointer(str(tmp_path), 3)
    gan = train.create_gan(config)
    restored = checkpointer.restore(10, train.create_state(gan, config, sharding.make_mesh()))
    checkpointer.close()
    assert int(restored.step) == 10 and all(np.isfinite(x).all() for x in jax.tree.leaves(restored))


def run_cli(*args, env_extra=None, script=None):
    env = {**os.environ, **(env_extra or {})}
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "clr_gan_jax.main", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "override, message",
    [
        ("--config.train.stepz=3", "error: unknown config field 'stepz' in a --config.* override; did you mean \"steps\"?"),
        ("--config.optim.d_lr=0", "error: optim.d_lr must be > 0, got 0.0"),
        ("--config.data.resolution=24", "error: data.resolution must be a power of two >= 8, got 24"),
        ("--config.train.batch_size=12", "error: train.batch_size=12 is not divisible by the 8 devices: use a multiple of 8"),
        ("--config.train.n_critic=0", "error: train.n_critic must be an integer >= 1, got 0"),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, override, message):
    workdir = tmp_path / "run"
    result = run_cli("--config=configs/digits_dcgan_clr.py", f"--workdir={workdir}", override)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr
    assert not workdir.exists()


def test_unusable_workdir_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("--config=configs/ring8.py", f"--workdir={blocker}/run")
    assert result.returncode == 2 and result.stderr.strip().endswith(f"{blocker} is not a directory")


KILL_AFTER_CHECKPOINT = """
import os, signal
from clr_gan_jax import checkpoints, main

save = checkpoints.Checkpointer.save


def save_then_die(self, step, *args, **kwargs):
    save(self, step, *args, **kwargs)
    if step == int(os.environ["KILL_AT_STEP"]):
        self.wait()
        os.kill(os.getpid(), signal.SIGKILL)


checkpoints.Checkpointer.save = save_then_die
main.run()
"""

DIGITS_TINY = [
    "--config=configs/digits_dcgan_clr.py", "--config.data.resolution=8", "--config.model.z_dim=8",
    "--config.model.g_width=16", "--config.model.d_width=16", "--config.train.batch_size=16",
    "--config.train.n_critic=2", "--config.train.steps=8", "--config.train.checkpoint_every=4",
    "--config.train.log_every=4", "--config.train.sample_every=4", "--config.eval.metrics=", "--config.eval.best_metric=",
]


def restore_numpy(config, workdir, step):
    checkpointer = checkpoints.Checkpointer(workdir, 3)
    state = checkpointer.restore(step, train.create_state(train.create_gan(config), config, sharding.make_mesh()))
    checkpointer.close()
    return jax.device_get(state)


def test_killed_run_resumes_bitwise_identically(tmp_path):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    result = run_cli(*DIGITS_TINY, f"--workdir={straight}")
    assert result.returncode == 0, result.stderr
    result = run_cli(*DIGITS_TINY, f"--workdir={killed}", script=KILL_AFTER_CHECKPOINT, env_extra={"KILL_AT_STEP": "4"})
    assert result.returncode == -9, result.stderr
    assert sorted(os.listdir(os.path.join(killed, "checkpoints"))) == ["4"]
    result = run_cli(*DIGITS_TINY, f"--workdir={killed}")
    assert result.returncode == 0, result.stderr
    assert "Resumed from" in result.stderr and "at step 4" in result.stderr

    config = base_config()
    config.data.resolution, config.model.z_dim, config.model.g_width, config.model.d_width = 8, 8, 16, 16
    a, b = restore_numpy(config, straight, 8), restore_numpy(config, killed, 8)
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 40
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(x, y)
    grid = np.asarray(Image.open(os.path.join(killed, "samples", "step_0000008.png")))
    assert grid.ndim == 2 and grid.shape[0] >= 256  # an 8x8 grid of 8-pixel grey digits, upscaled
