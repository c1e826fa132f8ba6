"""The run directory (``--workdir``): checks made before anything is written to it, and one training run at a time.

The lock is an advisory ``fcntl.flock`` on ``<workdir>/.lock-<process index>``: the kernel
releases it when its process ends, however it ends (a ``kill -9`` leaves nothing stuck), and
the processes of one multi-process job take one file each, so they never refuse each other
while a second job's process i is refused by the first job's process i. The file holds the
holder's pid, host and start time for the refusal message. flock works on local disks and
NFS; object-store mounts (gcsfuse) do not enforce it.

``versions.json`` records the versions of the packages that decide a run's numbers, so a result
can be traced to its environment (``constraints.txt`` at the repository root reproduces ours).
"""

import datetime
import fcntl
import importlib.metadata
import json
import os
import platform
import socket

from clr_gan_jax.errors import UserError, require


def validate(workdir: str):
    """The workdir must be creatable and writable; nothing is written if it is not."""
    require(bool(workdir), "--workdir is required")
    path = os.path.abspath(workdir)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    require(os.path.isdir(existing), f"--workdir {workdir}: {existing} is not a directory")
    require(os.access(existing, os.W_OK | os.X_OK), f"--workdir {workdir} is not writable ({existing}): choose another")


VERSIONED_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy")


def installed_versions() -> dict[str, str | None]:
    """Python's and each of `VERSIONED_PACKAGES`' installed version (None for a package that is not installed)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_versions(workdir: str) -> str:
    """Writes `installed_versions` to ``<workdir>/versions.json`` (rewritten by every run, so a resumed run records
    the environment it resumed in) and returns the path."""
    path = os.path.join(workdir, "versions.json")
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(installed_versions(), f, indent=2)
        f.write("\n")
    return path


class RunLock:
    """Held for the duration of a training run: ``with RunLock(workdir, process_index): ...``."""

    def __init__(self, workdir: str, process_index: int = 0):
        self.path = os.path.join(os.path.abspath(workdir), f".lock-{process_index}")
        self._file = None

    def require_free(self):
        """Refuses (UserError) if another run holds the lock, without writing anything: the early check."""
        if os.path.exists(self.path):
            with open(self.path) as file:
                self._try_lock(file)
                fcntl.flock(file, fcntl.LOCK_UN)

    def _try_lock(self, file):
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = _describe(file.read())
            file.close()
            raise UserError(
                f"another training run ({holder}) is using --workdir {os.path.dirname(self.path)}: "
                "wait for it to end, stop it, or choose another --workdir"
            ) from None

    def __enter__(self) -> "RunLock":
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        file = open(self.path, "a+")  # noqa: SIM115 -- held open while the run lasts
        self._try_lock(file)
        file.seek(0)
        file.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}))
        file.flush()
        self._file = file
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no description"
