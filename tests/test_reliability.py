"""Faults a run meets, each reproduced: a diverging state, two runs on one workdir, damaged checkpoints, a full disk,
a run too big for memory, bad data, signals, and the smaller traps of the command line and exported files."""

import gc
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import REPO, load_config_file, read_jsonl, restore_state, ring8_config, run_cli, save_image

from clr_gan_jax import build, checkpoints, export, methods, train
from clr_gan_jax.errors import CheckpointError, TrainingDivergedError, UserError
from clr_gan_jax.workdir import RunLock
from clr_gan_jax.writers import MetricWriter

RING8 = [
    "--config=configs/ring8.py",
    "--config.model.z_dim=8",
    "--config.model.hidden=32",
    "--config.model.depth=1",
    "--config.train.batch_size=32",
    "--config.train.n_critic=1",
    "--config.train.log_every=2",
    "--config.train.sample_every=4",
    "--config.train.checkpoint_every=4",
    "--config.eval.metrics=",
    "--config.eval.best_metric=",
]


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def small_ring8():
    config = ring8_config()
    config.train.update(steps=8, checkpoint_every=4, log_every=4, sample_every=8, keep_checkpoints=1)
    return config


# 1. A non-finite state is never checkpointed, and never rotates out a good checkpoint.


def test_non_finite_learning_rate_is_refused_up_front(tmp_path):
    result = run_cli(*RING8, f"--workdir={tmp_path / 'run'}", "--config.optim.g_lr=inf")
    assert result.returncode == 2 and last_line(result) == "error: optim.g_lr must be a finite number > 0, got inf"
    assert not (tmp_path / "run").exists()


def test_a_diverged_state_is_not_saved_and_the_good_checkpoint_stays(tmp_path, monkeypatch):
    """G's weights turn NaN in step 8 while every logged loss stays finite (as with an infinite learning rate)."""
    original = methods.train_step

    def poisoned(method, state, batch, active, constrain=lambda x: x):
        state, metrics = original(method, state, batch, active, constrain)
        g = state.nets["g"]
        params = jax.tree.map(lambda p: jnp.where(state.step >= 8, jnp.nan, p), g.params)  # after step 8's update
        return state.replace(nets={**state.nets, "g": g.replace(params=params)}), metrics

    monkeypatch.setattr(methods, "train_step", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"NaN or Inf after step 8.*last good checkpoint is step 4"):
        train.train_and_evaluate(small_ring8(), str(tmp_path))
    assert os.listdir(tmp_path / "checkpoints") == ["4"]  # keep_checkpoints=1: the good one was not rotated out
    restored = restore_state(small_ring8(), str(tmp_path), 4)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored))


# 2. One training run per workdir.

HOLD_LOCK = """
import sys, time
from clr_gan_jax.workdir import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_second_run_on_a_workdir_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"^another training run \(pid {holder.pid} on .*\) is using --workdir"):
            train.train_and_evaluate(small_ring8(), str(tmp_path))
        assert not (tmp_path / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(str(tmp_path)):  # the kernel released the killed holder's lock
        pass
    with RunLock(str(tmp_path), process_index=0), RunLock(str(tmp_path), process_index=1):
        pass  # the processes of one multi-process job take one lock each


# 3. A damaged checkpoint is named in one line; training falls back to the newest intact one.


def _largest_file(folder: str) -> str:
    files = [os.path.join(d, f) for d, _, names in os.walk(folder) for f in names]
    return max(files, key=os.path.getsize)


def _truncate(path: str):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _flip_bytes(path: str):
    with open(path, "r+b") as f:
        content = bytearray(f.read())
        for i in range(len(content) // 3, len(content) // 3 + 64):
            content[i] ^= 0xFF
        f.seek(0)
        f.write(content)


def _garbage(path: str):
    with open(path, "w") as f:
        f.write("garbage{{")


DAMAGE = {
    "truncated array data": lambda c: _truncate(_largest_file(os.path.join(c, "state", "d"))),
    "corrupted array data": lambda c: _flip_bytes(_largest_file(os.path.join(c, "state", "d"))),
    "corrupted manifest": lambda c: _garbage(os.path.join(c, "state", "manifest.ocdbt")),
    "missing state metadata": lambda c: os.remove(os.path.join(c, "state", "_METADATA")),
    "missing state folder": lambda c: shutil.rmtree(os.path.join(c, "state")),
    "garbage config": lambda c: _garbage(os.path.join(c, "config", "metadata")),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Ring8 run with checkpoints at steps 4 and 8."""
    workdir = tmp_path_factory.mktemp("trained")
    config = small_ring8()
    config.train.keep_checkpoints = 2
    train.train_and_evaluate(config, str(workdir))
    return config, workdir


def damaged_copy(trained, tmp_path, kind: str) -> str:
    config, workdir = trained
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    DAMAGE[kind](str(copy / "checkpoints" / "8"))
    return str(copy)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_checkpoint_is_named_with_the_newest_intact_one(trained, tmp_path, kind):
    config, _ = trained
    workdir = damaged_copy(trained, tmp_path, kind)
    with pytest.raises(CheckpointError) as error:
        checkpointer = checkpoints.Checkpointer(workdir, None, create=False)
        try:
            checkpointer.restore(8, build.abstract_state(build.build(config)))
        finally:
            checkpointer.close()
    message = str(error.value)
    assert message.startswith(f"checkpoint 8 in {workdir}/checkpoints is damaged (") and "\n" not in message
    assert message.endswith("the newest intact one is step 4")


def test_training_moves_a_damaged_checkpoint_aside_and_resumes_from_the_intact_one(trained, tmp_path, caplog):
    config, _ = trained
    workdir = damaged_copy(trained, tmp_path, "truncated array data")
    config = config.copy_and_resolve_references()
    config.train.steps = 12
    state = train.train_and_evaluate(config, workdir)
    assert int(state.step) == 12
    assert "checkpoint 8 in" in caplog.text and "is damaged" in caplog.text and "checkpoints_damaged" in caplog.text
    assert os.listdir(os.path.join(workdir, "checkpoints_damaged")) == ["8"]  # kept, not deleted
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["12", "8"]  # 8 rewritten by the resumed run


def test_export_of_a_damaged_checkpoint_is_one_line(trained, tmp_path):
    workdir = damaged_copy(trained, tmp_path, "corrupted manifest")
    result = run_cli(*RING8, f"--workdir={workdir}", "--config.train.steps=8", "--mode=export")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last_line(result).startswith(f"error: checkpoint 8 in {workdir}/checkpoints is damaged (")
    assert last_line(result).endswith("the newest intact one is step 4")
    result = run_cli(*RING8, f"--workdir={workdir}", "--config.train.steps=8", "--mode=export", "--step=4")
    assert result.returncode == 0, result.stderr


# 4. A full disk: a failed save is one error at that save; a preview image that cannot be written is a warning.

FILE_SIZE_LIMIT = """
import resource, signal, sys
from clr_gan_jax import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)), resource.RLIM_INFINITY))
main.run()
"""


def test_a_checkpoint_that_does_not_fit_on_disk_is_one_error_and_older_ones_are_kept(tmp_path):
    workdir = str(tmp_path / "run")
    wide = ["--config.model.hidden=512", "--config.train.steps=4"]
    assert run_cli(*RING8, *wide, f"--workdir={workdir}").returncode == 0
    limit = 64 * 1024  # files of up to 64 KiB: logs and samples fit, the 512-wide networks' arrays do not
    result = run_cli(
        str(limit), *RING8, *wide, f"--workdir={workdir}", "--config.train.steps=8", script=FILE_SIZE_LIMIT
    )
    assert result.returncode == 2, result.stderr
    assert last_line(result).startswith(f"error: could not write checkpoint 8 to {workdir}/checkpoints (")
    assert last_line(result).endswith(
        "the older checkpoints are untouched: free disk space (or fix the folder's permissions) and rerun to resume"
    )
    assert os.listdir(os.path.join(workdir, "checkpoints")) == ["4"]
    config = load_config_file("configs/ring8.py")
    config.model.update(z_dim=8, hidden=512, depth=1)
    assert int(restore_state(config, workdir, 4).step) == 4


def test_a_failed_checkpoint_write_silences_its_abandoned_coroutines():
    """Orbax's unfinished writes are coroutines collected later; their 'never awaited' warnings would print after the
    one-line error."""

    async def write_fragment():
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OSError), checkpoints._quiet_failure():
            raise OSError("no space left on device")
        abandoned = write_fragment()
        del abandoned
        gc.collect()
        warnings.warn("a later warning still shows", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a later warning still shows"]


def test_a_sample_grid_that_cannot_be_written_is_a_warning(tmp_path, caplog):
    (tmp_path / "samples").write_text("a file where the samples folder should be")
    state = train.train_and_evaluate(small_ring8(), str(tmp_path))
    assert int(state.step) == 8 and "Could not write the samples of step 8" in caplog.text


# 5. A run too big for the machine is refused before anything is allocated or written.


def test_a_run_that_cannot_fit_in_memory_is_refused(tmp_path):
    result = run_cli(*RING8, "--config.model.hidden=60000", f"--workdir={tmp_path / 'run'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last_line(result).startswith("error: one train step needs about ")
    assert "lower train.batch_size, data.resolution or the model's widths" in last_line(result)
    assert not (tmp_path / "run").exists()


# 6. Bad data is found before the workdir is written.


def test_a_missing_data_folder_writes_nothing(tmp_path):
    result = run_cli(
        "--config=configs/digits_dcgan_clr.py",
        f"--workdir={tmp_path / 'run'}",
        "--config.data.name=images",
        f"--config.data.path={tmp_path / 'absent'}",
        "--config.eval.metrics=",
        "--config.eval.best_metric=",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr and "absent" in last_line(result)
    assert not (tmp_path / "run").exists()


def test_a_corrupt_image_stops_training_in_one_line_or_is_replaced_with_skip_bad(tmp_path):
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i in range(40):
        save_image(folder / f"{i:03d}.png", rng.integers(0, 256, (8, 8, 3), np.uint8))
    (folder / "017.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))  # a PNG signature, then garbage
    args = [
        "--config=configs/digits_dcgan_clr.py",
        "--config.data.name=images",
        f"--config.data.path={folder}",
        "--config.data.resolution=8",
        "--config.model.z_dim=8",
        "--config.model.g_width=16",
        "--config.model.d_width=16",
        "--config.train.batch_size=16",
        "--config.train.steps=4",
        "--config.eval.metrics=",
        "--config.eval.best_metric=",
    ]
    result = run_cli(*args, f"--workdir={tmp_path / 'strict'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "017.png" in last_line(result) and "--config.data.skip_bad=True" in last_line(result)
    result = run_cli(*args, f"--workdir={tmp_path / 'lenient'}", "--config.data.skip_bad=True")
    assert result.returncode == 0, result.stderr
    assert "017.png" in result.stderr  # logged once, replaced by the next good image


# 7. SIGTERM and Ctrl-C stop at a step boundary with a checkpoint of that step.


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_training_with_a_checkpoint_and_a_relaunch_resumes(tmp_path, signum):
    workdir = tmp_path / "run"
    args = [sys.executable, "-m", "clr_gan_jax.main", *RING8, f"--workdir={workdir}", "--config.train.steps=100000"]
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (workdir / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    message = stderr.strip().splitlines()[-1]
    step = int(message.split("after step ")[1].split(";")[0])
    assert message == (
        f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint {step} is in "
        f"{workdir}/checkpoints: rerun the same command to resume"
    )
    assert "Traceback" not in stderr and str(step) in os.listdir(workdir / "checkpoints")
    result = run_cli(*RING8, f"--workdir={workdir}", f"--config.train.steps={step + 2}")
    assert result.returncode == 0 and f"at step {step}" in result.stderr


# 8. The smaller traps.


def test_an_extra_positional_argument_is_one_line(tmp_path):
    result = run_cli(*RING8, f"--workdir={tmp_path}", "train")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unexpected arguments 'train': every option is a --flag (see --help)"


def test_read_modes_on_a_mistyped_workdir_create_nothing(tmp_path):
    config = small_ring8()
    with pytest.raises(UserError, match="^no checkpoint in .*: train first"):
        export.export_run(config, str(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()


def test_bad_exported_files_are_one_line(trained, tmp_path):
    config, workdir = trained
    path = export.export_run(config, str(workdir), str(tmp_path / "generator.npz"))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(pathlib.Path(path).read_bytes()[:100])
    shutil.copy(tmp_path / "generator.json", tmp_path / "truncated.json")
    with pytest.raises(UserError, match=rf"^The exported generator {truncated} is not a readable .npz archive"):
        export.sample_from_npz(str(truncated), num=2)
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(UserError, match=rf"^The exported generator {text} is not a readable .npz archive"):
        export.sample_from_npz(str(text), num=2)
    arrays = dict(np.load(path))
    arrays["params/Dense_0/kernel"] = np.full_like(arrays["params/Dense_0/kernel"], np.nan)
    np.savez(tmp_path / "nan.npz", **arrays)
    shutil.copy(tmp_path / "generator.json", tmp_path / "nan.json")
    with pytest.raises(UserError, match="params/Dense_0/kernel holds NaN or Inf values: the run diverged"):
        export.sample_from_npz(str(tmp_path / "nan.npz"), num=2)


def test_an_inception_weights_file_that_is_text_is_refused_before_the_workdir_is_written(tmp_path):
    weights = tmp_path / "inception.npz"
    weights.write_text("not weights")
    result = run_cli(
        "--config=configs/digits_dcgan_clr.py",
        f"--workdir={tmp_path / 'run'}",
        "--config.eval.metrics=fid",
        f"--config.eval.inception_weights={weights}",
        "--config.eval.best_metric=",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert last_line(result).startswith(f"error: Inception weights {weights} is not a readable .npz archive")
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_drops_the_metric_lines_after_its_checkpoint(tmp_path):
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for step in (2, 4, 6):
            f.write(json.dumps({"step": step, "d_loss": 1.0}) + "\n")
        f.write('{"step": 8, "d_lo')  # torn by a kill
    writer = MetricWriter(str(tmp_path), resume_step=4)
    writer.write_scalars(6, {"d_loss": 2.0})
    writer.close()
    assert [(line["step"], line["d_loss"]) for line in read_jsonl(tmp_path / "metrics.jsonl")] == [
        (2, 1.0),
        (4, 1.0),
        (6, 2.0),
    ]
