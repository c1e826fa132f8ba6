"""Two processes on this machine (2 CPU devices each) train exactly like one process with 4 devices.

Also: a killed process stops the other within the heartbeat timeout and a relaunch resumes;
processes with different configs, or a process that never starts, fail with one clear line.
"""

import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from helpers import BIASES_BEFORE_BATCHNORM, REPO, load_config_file, read_jsonl, restore_state

from clr_gan_jax import sharding, train

pytestmark = pytest.mark.slow  # starts processes

HEARTBEAT_TIMEOUT = 10
NO_EVAL = {"eval.metrics": "", "eval.best_metric": ""}
TINY = {
    "ring8": (
        "configs/ring8.py",
        {
            "model.z_dim": 8,
            "model.hidden": 32,
            "model.depth": 1,
            "train.batch_size": 32,
            "train.n_critic": 2,
            "train.steps": 8,
            "train.log_every": 4,
            "train.sample_every": 4,
            "train.checkpoint_every": 4,
            "train.num_samples": 8,
            **NO_EVAL,
        },
    ),
    "digits": (
        "configs/digits_dcgan_clr.py",
        {
            "data.resolution": 8,
            "model.z_dim": 8,
            "model.g_width": 16,
            "model.d_width": 16,
            "train.batch_size": 16,
            "train.n_critic": 1,
            "train.steps": 4,
            "train.log_every": 2,
            "train.sample_every": 4,
            "train.checkpoint_every": 4,
            **NO_EVAL,
        },
    ),
}

# Process KILL_PROCESS dies (SIGKILL) once its checkpoint of step KILL_AT_STEP is on disk.
KILL_AFTER_CHECKPOINT = """
import os, signal
import jax
from clr_gan_jax import checkpoints, main

save = checkpoints.Checkpointer.save


def save_then_die(self, step, *args, **kwargs):
    save(self, step, *args, **kwargs)
    if step == int(os.environ["KILL_AT_STEP"]) and jax.process_index() == int(os.environ["KILL_PROCESS"]):
        os.kill(os.getpid(), signal.SIGKILL)


checkpoints.Checkpointer.save = save_then_die
main.run()
"""


def load_config(name: str):
    path, overrides = TINY[name]
    config = load_config_file(path)
    config.update_from_flattened_dict(overrides)
    return config


def cli_args(name: str, workdir) -> list[str]:
    path, overrides = TINY[name]
    return [f"--config={path}", f"--workdir={workdir}", *(f"--config.{k}={v}" for k, v in overrides.items())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Processes 0..n-1 of one run, started like launch/local.sh does, with logs in files (no pipe can fill)."""

    def __init__(self, args, log_dir, cache_dir, num_processes=2, script=None, extra_args=None, env_extra=None):
        port = free_port()
        env = {
            **os.environ,
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            **(env_extra or {}),
            # Later launches reuse earlier launches' compiled programs (the model init alone is ~100 small ones).
            "JAX_COMPILATION_CACHE_DIR": str(cache_dir),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        }
        program = [sys.executable, "-c", script] if script else [sys.executable, "-m", "clr_gan_jax.main"]
        os.makedirs(log_dir, exist_ok=True)
        self.logs = [os.path.join(log_dir, f"process_{p}") for p in range(num_processes)]
        self.popens = []
        for p in range(num_processes):
            flags = [
                f"--coordinator_address=127.0.0.1:{port}",
                f"--num_processes={num_processes}",
                f"--process_id={p}",
                f"--heartbeat_timeout={HEARTBEAT_TIMEOUT}",
            ]
            with open(self.logs[p] + ".out", "w") as out, open(self.logs[p] + ".err", "w") as err:
                self.popens.append(
                    subprocess.Popen(
                        [*program, *args, *flags, *(extra_args or {}).get(p, [])],
                        cwd=REPO,
                        env=env,
                        stdout=out,
                        stderr=err,
                    )
                )
        self.exit_times = [None] * num_processes

    def wait(self, timeout=300) -> list[int]:
        """Waits for every process, noting when each exited; kills them all past ``timeout``."""
        deadline = time.monotonic() + timeout
        while None in self.exit_times and time.monotonic() < deadline:
            for p, popen in enumerate(self.popens):
                if self.exit_times[p] is None and popen.poll() is not None:
                    self.exit_times[p] = time.monotonic()
            time.sleep(0.1)
        for popen in self.popens:
            if popen.poll() is None:
                popen.kill()
        return [popen.wait() for popen in self.popens]

    def errors(self, p: int) -> str:
        with open(self.logs[p] + ".err") as f:
            return f.read()

    def output(self, p: int) -> str:
        with open(self.logs[p] + ".out") as f:
            return f.read() + self.errors(p)


def reference_run(name: str, workdir: str):
    """The same training in this process on 4 of conftest's 8 CPU devices."""
    make_mesh = sharding.make_mesh
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            sharding, "make_mesh", lambda devices=None: make_mesh(jax.devices()[:4] if devices is None else devices)
        )
        train.train_and_evaluate(load_config(name), workdir)


def metric_lines(workdir) -> list[dict]:
    lines = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
    return [{k: v for k, v in line.items() if not k.endswith("_per_sec")} for line in lines]


def assert_same_training(name: str, workdir, reference_workdir, step: int):
    lines, reference = metric_lines(workdir), metric_lines(reference_workdir)
    assert [line["step"] for line in lines] == [line["step"] for line in reference]  # one writer, no duplicates
    for line, expected in zip(lines, reference):
        assert line.keys() == expected.keys()
        for key in line:
            np.testing.assert_allclose(
                line[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=f"{key} at {line['step']}"
            )
    state, expected = (
        restore_state(load_config(name), workdir, step),
        restore_state(load_config(name), reference_workdir, step),
    )
    compared = 0
    for (path, leaf), expected_leaf in zip(jax.tree_util.tree_leaves_with_path(state), jax.tree.leaves(expected)):
        key = jax.tree_util.keystr(path)
        if not key.endswith(BIASES_BEFORE_BATCHNORM):  # see tests/helpers.py
            np.testing.assert_allclose(leaf, expected_leaf, rtol=1e-5, atol=1e-5, err_msg=key)
            compared += 1
    assert compared >= 10


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compilation_cache")


@pytest.fixture(scope="module")
def ring8_killed_and_relaunched(tmp_path_factory, cache):
    """Process 1 dies after the step-4 checkpoint; then both are relaunched and finish at step 8."""
    root = tmp_path_factory.mktemp("ring8_multiprocess")
    workdir = root / "run"
    killed = Processes(
        cli_args("ring8", workdir),
        root / "killed",
        cache,
        script=KILL_AFTER_CHECKPOINT,
        env_extra={"KILL_AT_STEP": "4", "KILL_PROCESS": "1"},
    )
    reference_run("ring8", str(root / "reference"))  # meanwhile
    killed_codes = killed.wait()
    relaunched = Processes(cli_args("ring8", workdir), root / "relaunched", cache)
    relaunched_codes = relaunched.wait()
    return root, killed, killed_codes, relaunched, relaunched_codes


def test_killed_process_stops_the_other_within_the_heartbeat_timeout(ring8_killed_and_relaunched):
    _, killed, codes, _, _ = ring8_killed_and_relaunched
    assert codes[1] == -9, killed.output(1)
    assert codes[0] not in (0, -9), killed.output(0)
    survivor = killed.output(0)
    assert "[4/8" in survivor and "[8/8" not in survivor
    assert "another task died" in survivor and "stopped sending heartbeats" in survivor
    assert killed.exit_times[0] - killed.exit_times[1] < HEARTBEAT_TIMEOUT + 20


def test_relaunch_resumes_and_two_processes_match_one(ring8_killed_and_relaunched):
    root, _, _, relaunched, codes = ring8_killed_and_relaunched
    assert codes == [0, 0], relaunched.output(0) + relaunched.output(1)
    assert all("at step 4" in relaunched.output(p) for p in (0, 1))
    assert sorted(os.listdir(root / "run" / "checkpoints")) == ["4", "8"]
    assert sorted(os.listdir(root / "run" / "samples")) == ["step_0000004.png", "step_0000008.png"]
    assert_same_training("ring8", root / "run", root / "reference", 8)


def test_digits_two_processes_match_one(tmp_path, cache):
    run = Processes(cli_args("digits", tmp_path / "run"), tmp_path / "logs", cache)
    reference_run("digits", str(tmp_path / "reference"))  # meanwhile
    assert run.wait() == [0, 0], run.output(0) + run.output(1)
    assert_same_training("digits", tmp_path / "run", tmp_path / "reference", 4)


def test_processes_with_different_configs_refuse_to_start(tmp_path, cache):
    run = Processes(
        cli_args("ring8", tmp_path / "run"), tmp_path / "logs", cache, extra_args={1: ["--config.train.steps=9"]}
    )
    assert run.wait(timeout=120) == [2, 2]
    for p in (0, 1):
        assert run.errors(p).strip().splitlines()[-1] == (
            "error: processes [1] run a different config, --workdir or --mode than process 0: "
            "start every process with the same command line"
        )
    assert not (tmp_path / "run").exists()


def test_a_process_that_never_starts_times_out_at_start_up(tmp_path):
    port = free_port()
    result = subprocess.run(  # process 0 of a declared two; process 1 never comes
        [
            sys.executable,
            "-m",
            "clr_gan_jax.main",
            *cli_args("ring8", tmp_path / "run"),
            "--init_timeout=3",
            f"--coordinator_address=127.0.0.1:{port}",
            "--num_processes=2",
            "--process_id=0",
        ],
        cwd=REPO,
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: process 0 could not join the other processes at 127.0.0.1:{port} within --init_timeout=3s")
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
