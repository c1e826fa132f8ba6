"""The training loop end to end: outputs, exact resumption after a kill, divergence, bad input, export."""

import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import MICRO, assert_trees_equal, micro_config, read_json, read_jsonl, restore_state, ring8_config, run_cli
from PIL import Image

from clr_gan_jax import build, checkpoints, export, methods, train
from clr_gan_jax.default_config import base_config
from clr_gan_jax.errors import CheckpointError, TrainingDivergedError


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("ring8"))
    config = ring8_config()
    return config, workdir, train.train_and_evaluate(config, workdir)


def test_run_writes_metrics_samples_checkpoints_and_tensorboard(ring8_run):
    config, workdir, state = ring8_run
    assert int(state.step) == 20
    lines = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
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
    versions = read_json(os.path.join(workdir, "versions.json"))
    assert {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy"} <= versions.keys()
    assert (versions["jax"], versions["numpy"], versions["flax"]) == (jax.__version__, np.__version__, flax.__version__)


def test_export_round_trip(ring8_run, tmp_path):
    config, workdir, state = ring8_run
    path = export.export_run(config, workdir, str(tmp_path / "generator.npz"))
    with np.load(path, allow_pickle=False) as arrays:
        assert "params/Dense_0/kernel" in arrays.files
    meta = read_json(tmp_path / "generator.json")
    assert meta["step"] == 20 and meta["config"]["model"]["z_dim"] == 8 and meta["example_shape"] == [2]
    samples = export.sample_from_npz(path, num=5, seed=3)
    experiment = build.build(config)
    latents = experiment.method.sample_latents(jax.random.key(3), 5)
    np.testing.assert_allclose(samples, build.generate_fn(experiment)(state.ema, latents), atol=1e-6)
    assert samples.shape == (5, 2)


def test_export_records_the_checkpoints_config_not_the_command_lines(ring8_run, tmp_path):
    config, workdir, _ = ring8_run
    changed = config.copy_and_resolve_references()
    changed.optim.g_lr = 0.123  # allowed: no array changes shape
    export.export_run(changed, workdir, str(tmp_path / "generator.npz"))
    assert read_json(tmp_path / "generator.json")["config"]["optim"]["g_lr"] == config.optim.g_lr


def test_checkpoint_compatibility_is_decided_by_the_saved_arrays(ring8_run):
    config, workdir, _ = ring8_run
    checkpointer = checkpoints.Checkpointer(workdir, None)
    changed = config.copy_and_resolve_references()
    changed.optim.update(g_lr=1e-2, d_lr=1e-3)
    changed.clr.update(w_clr=1.0, distance="l1")
    checkpointer.check_compatible(20, build.abstract_state(build.build(changed)))
    changed.model.hidden = 64
    with pytest.raises(
        CheckpointError, match=r"different model: nets/d/params/Dense_0/bias is \(32,\) float32 there but \(64,\)"
    ):
        checkpointer.check_compatible(20, build.abstract_state(build.build(changed)))
    changed = config.copy_and_resolve_references()
    changed.clr.enabled = False
    with pytest.raises(
        CheckpointError, match=r"nets/d/params/phi/bias is in the checkpoint but not in this config's model"
    ):
        checkpointer.check_compatible(20, build.abstract_state(build.build(changed)))
    checkpointer.close()


def test_checkpoint_of_another_model_is_refused_and_kept(ring8_run):
    config, workdir, _ = ring8_run
    before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    other = ring8_config()
    other.model.hidden = 64
    other.train.steps = 30
    with pytest.raises(CheckpointError, match="different model"):
        train.train_and_evaluate(other, workdir)
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before


def test_nan_loss_stops_with_step_and_name_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    original = methods.train_step

    def poisoned(method, state, batch, active, constrain=lambda x: x):
        state, metrics = original(method, state, batch, active, constrain)
        return state, {**metrics, "g_loss": jnp.where(state.step >= 15, jnp.nan, metrics["g_loss"])}

    monkeypatch.setattr(methods, "train_step", poisoned)
    config = ring8_config()
    config.train.log_every = 5
    with pytest.raises(TrainingDivergedError, match=r"g_loss is nan at step 15.*last good checkpoint is step 10"):
        train.train_and_evaluate(config, str(tmp_path))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10"]
    restored = restore_state(config, str(tmp_path), 10)
    assert int(restored.step) == 10 and all(np.isfinite(x).all() for x in jax.tree.leaves(restored))


@pytest.mark.slow
@pytest.mark.parametrize(
    "override, message",
    [
        (
            "--config.train.stepz=3",
            "error: unknown config field 'stepz' in a --config.* override; did you mean \"steps\"?",
        ),
        ("--config.optim.d_lr=0", "error: optim.d_lr must be a finite number > 0, got 0.0"),
        ("--config.data.resolution=24", "error: data.resolution: resolution must be a power of two >= 8, got 24"),
        (
            "--config.train.batch_size=12",
            "error: train.batch_size=12 is not divisible by the 8 devices: use a multiple of 8",
        ),
        ("--config.train.n_critic=0", "error: train.n_critic must be an integer >= 1, got 0"),
        (
            "--config.loss.adversarial=wasserstein",
            "error: loss.adversarial: unknown name 'wasserstein'; known: vanilla, hinge, lsgan, wgan, realness",
        ),
        ("--config.method=stylegan", "error: method: unknown name 'stylegan'; known: gan, stylegan2, veegan"),
        (
            "--config.model.g_width=2",
            "error: model.g_width=2 is too small for 16 px: the width halves per stage, so it must be an integer >= 4",
        ),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, override, message):
    workdir = tmp_path / "run"
    result = run_cli("--config=configs/digits_dcgan_clr.py", f"--workdir={workdir}", override)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr
    assert not workdir.exists()


@pytest.mark.slow
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
        os.kill(os.getpid(), signal.SIGKILL)


checkpoints.Checkpointer.save = save_then_die
main.run()
"""

# DCGAN + CLR with BatchNorm in G and spectral norm in D: every kind of mutable state resumes too.
DIGITS_TINY = {
    "data.resolution": 8,
    "model.z_dim": 8,
    "model.g_width": 16,
    "model.d_width": 16,
    "model.spectral_norm": True,
    "train.batch_size": 16,
    "train.n_critic": 2,
    "train.steps": 8,
    "train.checkpoint_every": 4,
    "train.log_every": 4,
    "train.sample_every": 4,
    "eval.metrics": "",
    "eval.best_metric": "",
}
DIGITS_TINY_ARGS = ["--config=configs/digits_dcgan_clr.py", *(f"--config.{k}={v}" for k, v in DIGITS_TINY.items())]
# StyleGAN2-ADA + CLR at 8 px with all four phases due by step 4: w_avg, the noise buffers, the path-length mean,
# both lazily regularised Adam states, the EMA and ADA's p and sign sums all resume too.
STYLEGAN2_TINY = {
    **MICRO,
    "augment.p": 0.2,
    "train.steps": 8,
    "train.checkpoint_every": 4,
    "train.log_every": 4,
    "train.sample_every": 4,
    "train.num_samples": 4,
}
STYLEGAN2_TINY_ARGS = [
    "--config=configs/stylegan2.py:tiny_ada_clr",
    *(f"--config.{k}={v}" for k, v in STYLEGAN2_TINY.items()),
]


def digits_tiny_config():
    config = base_config()
    config.update_from_flattened_dict(DIGITS_TINY)
    return config


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "make_config", "collection", "grid_ndim"),
    [
        (DIGITS_TINY_ARGS, digits_tiny_config, ("d", "spectral"), 2),  # grey digits
        (STYLEGAN2_TINY_ARGS, lambda: micro_config("tiny_ada_clr", **STYLEGAN2_TINY), ("g", "w_avg"), 3),
    ],
    ids=["dcgan_clr", "stylegan2_ada_clr"],
)
def test_killed_run_resumes_bitwise_identically(tmp_path, args, make_config, collection, grid_ndim):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    result = run_cli(*args, f"--workdir={straight}")
    assert result.returncode == 0, result.stderr
    result = run_cli(*args, f"--workdir={killed}", script=KILL_AFTER_CHECKPOINT, env_extra={"KILL_AT_STEP": "4"})
    assert result.returncode == -9, result.stderr
    assert sorted(os.listdir(os.path.join(killed, "checkpoints"))) == ["4"]
    result = run_cli(*args, f"--workdir={killed}")
    assert result.returncode == 0, result.stderr
    assert "Resumed from" in result.stderr and "at step 4" in result.stderr

    config = make_config()
    a, b = restore_state(config, straight, 8), restore_state(config, killed, 8)
    network, name = collection
    assert len(jax.tree.leaves(a)) > 40 and name in a.nets[network].collections
    assert_trees_equal(a, b)
    grid = np.asarray(Image.open(os.path.join(killed, "samples", "step_0000008.png")))
    assert grid.ndim == grid_ndim and grid.shape[0] >= 32
