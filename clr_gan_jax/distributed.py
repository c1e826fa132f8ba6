"""Multi-process runs: join the other processes (TPU pod, SLURM, or explicit flags) and check they agree.

Every process runs the same command. On a TPU pod slice or under SLURM, JAX finds the
coordinator, process count and process id by itself; elsewhere the three flags give them.
A single process (no cluster, no flags) never starts the distributed runtime.

Failures: a process still waiting for the others after --init_timeout exits with one
`error:` line (status 2); processes started with different configs all exit with one line.
When a process dies during training, JAX's runtime ends the others after at most
--heartbeat_timeout seconds ("... another task died ..."); relaunching all resumes.
"""

import hashlib
import json
import os
import sys
import threading

import jax
import ml_collections
import numpy as np

from clr_gan_jax.errors import UserError


def detected_process_count() -> int | None:
    """The process count of a cluster that `jax.distributed.initialize()` detects by itself, else None.

    Mirrors JAX's own detection (TPU VMs, SLURM, Open MPI, Kubernetes; mpi4py is opt-in there too).
    """
    from jax._src import clusters

    for env in clusters.ClusterEnv._cluster_types:
        if not env.opt_in_only_method and env.is_env_present():
            return env.get_process_count()
    return None


def initialize(
    coordinator_address: str | None,
    num_processes: int | None,
    process_id: int | None,
    init_timeout: int,
    heartbeat_timeout: int,
) -> bool:
    """Joins the run's other processes if there are any; returns whether it did. Call before any JAX computation."""
    explicit = (coordinator_address, num_processes, process_id)
    if any(x is not None for x in explicit) and None in explicit:
        raise UserError("--coordinator_address, --num_processes and --process_id go together: give all three or none")
    if None in explicit and (detected_process_count() or 1) == 1:
        return False
    if init_timeout < 1 or heartbeat_timeout < 1:
        raise UserError(
            f"--init_timeout and --heartbeat_timeout must be >= 1 second, got {init_timeout} and {heartbeat_timeout}"
        )
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise UserError(
            f"--process_id must be in [0, {num_processes}) for --num_processes={num_processes}, got {process_id}"
        )
    # Cross-process collectives on CPU need an implementation; older JAX releases default to none.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    where = f" at {coordinator_address}" if coordinator_address else ""
    who = f"process {process_id}" if process_id is not None else "this process"
    watchdog = threading.Timer(
        init_timeout,
        _exit_with_error,
        args=(
            f"{who} could not join the other processes{where} within --init_timeout={init_timeout}s: start all "
            "processes with the same coordinator address and process count, or raise --init_timeout",
        ),
    )
    watchdog.daemon = True
    watchdog.start()
    try:  # JAX's own timeout, a little later, is only the backstop: it aborts with a C++ stack dump
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            initialization_timeout=init_timeout + 30,
            heartbeat_timeout_seconds=heartbeat_timeout,
        )
    except (RuntimeError, ValueError, TypeError) as e:
        raise UserError(f"{who} could not join the other processes{where}: {_first_line(e)}") from e
    finally:
        watchdog.cancel()
    return True


def config_digest(config: ml_collections.ConfigDict, *extra: str) -> np.ndarray:
    """A 128-bit hash of the config (and ``extra`` strings) as four int32 words, for comparing across processes."""
    text = json.dumps([config.to_dict(), extra], sort_keys=True, default=str)
    return np.frombuffer(hashlib.sha256(text.encode()).digest()[:16], dtype=np.int32).copy()


def check_same_config(config: ml_collections.ConfigDict, *extra: str):
    """Raises UserError on every process unless all processes run the same config (and ``extra`` strings)."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digests = np.asarray(multihost_utils.process_allgather(config_digest(config, *extra)))
    differing = [p for p in range(len(digests)) if not np.array_equal(digests[p], digests[0])]
    if differing:
        raise UserError(
            f"processes {differing} run a different config, --workdir or --mode than process 0: "
            "start every process with the same command line"
        )


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _exit_with_error(message: str):
    """Ends the process from a watchdog thread while the main thread is blocked inside JAX's runtime."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(2)
