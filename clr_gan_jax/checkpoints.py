"""Orbax checkpoints of (train state, config), keeping the last N.

The data stream's position is the step (`data.pipeline`), so a checkpoint holds no iterator state.

Whether a checkpoint fits a config is decided by the arrays it holds: the saved tree's
paths, shapes and dtypes against the train state the config builds (`build.abstract_state`),
so any change that alters a parameter (architecture, widths, heads, optimizer) is refused
and any change that does not (learning rates, loss weights, the product dtype) is allowed.

A checkpoint that cannot be read (a truncated or corrupted array file, a missing metadata
file or item, garbage in the config item) is *damaged*: training moves it
to ``<workdir>/checkpoints_damaged/`` (never deleting it) and resumes from the newest intact
one, saying so; the read-only modes name it and the newest intact alternative. A save waits
until the checkpoint is on disk, so a failed save (a full disk) is one error at that save,
and nothing older is touched (orbax writes a new step to a temporary folder first).
"""

import contextlib
import glob
import io
import logging as std_logging
import os
import shutil
import sys
import time
import warnings

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from clr_gan_jax.errors import CheckpointError

STATE, CONFIG = "state", "config"
DAMAGED_FOLDER = "checkpoints_damaged"


# Replicated arrays are written from one replica each. Orbax's default on CPU and TPU splits every array over
# its replicas, one eager slice per replica and array: for a train state of a few hundred small arrays that is
# hundreds of compilations at a process's first save (16 s of 18 on 8 host devices), to parallelise copies of a
# few megabytes. Orbax warns on stderr of every override; this one is deliberate, so its warning is held back.
def _register_array_handler():
    absl_logger = std_logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(std_logging.ERROR)
    try:
        ocp.type_handlers.register_type_handler(
            jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True
        )
    finally:
        absl_logger.setLevel(level)


_register_array_handler()


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def leaf_specs(tree) -> dict[str, tuple[tuple[int, ...], str]]:
    """{'nets/d/params/Conv_0/kernel': (shape, dtype name)} for every array of a state or of a checkpoint's metadata."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {_path_name(path): (tuple(leaf.shape), str(leaf.dtype)) for path, leaf in leaves}


def _relevance(name: str) -> tuple:
    """Sort key: network parameters first (the clearest to name), then the rest of the networks, then the others."""
    return (not name.startswith("nets/"), "/params/" not in name, name)


def first_mismatch(saved: dict, expected: dict) -> str | None:
    """A sentence naming the first array in which two `leaf_specs` differ, or None if they agree."""
    for name in sorted(set(saved) | set(expected), key=_relevance):
        if name not in saved:
            return f"{name} is in this config's model but not in the checkpoint"
        if name not in expected:
            return f"{name} is in the checkpoint but not in this config's model"
        if saved[name] != expected[name]:
            (s_shape, s_dtype), (e_shape, e_dtype) = saved[name], expected[name]
            return f"{name} is {s_shape} {s_dtype} there but {e_shape} {e_dtype} for this config"
    return None


def _first_line(error: BaseException) -> str:
    """``Type: first line`` of an error, without TensorStore's pointer to its details, at most 300 characters."""
    lines = [line.strip() for line in str(error).split("See full TensorStore details")[0].splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0].rstrip('. ')[:300]}" if lines else type(error).__name__


class Checkpointer:
    """Saves and restores checkpoints under ``<workdir>/checkpoints``.

    ``create=False`` (the read-only modes) leaves a missing folder missing: no checkpoint then.
    """

    def __init__(self, workdir: str, max_to_keep: int | None, create: bool = True):
        self.workdir = os.path.abspath(workdir)
        self.directory = os.path.join(self.workdir, "checkpoints")
        self._manager = None
        if create or os.path.isdir(self.directory):
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=max_to_keep, create=create, enable_async_checkpointing=False
                ),
                item_handlers={
                    STATE: ocp.StandardCheckpointHandler(),
                    CONFIG: ocp.JsonCheckpointHandler(),
                },
            )

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps()) if self._manager else []

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, config: ml_collections.ConfigDict):
        """Writes checkpoint ``step`` and waits until it is on disk; CheckpointError (one line) if that fails."""
        try:
            with _quiet_failure():
                self._save(step, state, config)
        except Exception as e:  # orbax, tensorstore and the OS report a failed write in many types
            for partial in glob.glob(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp*")):
                shutil.rmtree(partial, ignore_errors=True)  # the unfinished write, which orbax would keep
            raise CheckpointError(
                f"could not write checkpoint {step} to {self.directory} ({_first_line(e)}); the older checkpoints "
                "are untouched: free disk space (or fix the folder's permissions) and rerun to resume"
            ) from e

    def _save(self, step: int, state, config):
        items = {STATE: ocp.args.StandardSave(state), CONFIG: ocp.args.JsonSave(config.to_dict())}
        self._manager.save(step, args=ocp.args.Composite(**items))
        self._manager.wait_until_finished()

    def saved_config(self, step: int) -> dict:
        return self._manager.restore(step, args=ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()}))[CONFIG]

    def check_compatible(self, step: int, abstract_state):
        """Raises CheckpointError unless the checkpoint at ``step`` holds arrays exactly like ``abstract_state``.

        A checkpoint whose metadata cannot be read raises the error of `_read` (damaged).
        """
        saved = leaf_specs(self._read(step, lambda: self._manager.item_metadata(step)[STATE]))
        if not saved:
            raise _Damaged(f"checkpoint {step} in {self.directory} is damaged (its state's metadata is missing)")
        mismatch = first_mismatch(saved, leaf_specs(abstract_state))
        if mismatch:
            raise CheckpointError(
                f"{self.directory} holds a checkpoint (step {step}) of a different model: {mismatch}. "
                "Use a new --workdir, or the config the run was started with."
            )

    def restore(self, step: int, state_like):
        """The train state of checkpoint ``step`` on the shardings of ``state_like``.

        The checkpoint must hold exactly ``state_like``'s arrays (`check_compatible`). CheckpointError
        names a damaged checkpoint and the newest intact one (checked by restoring it).
        """
        try:
            self.check_compatible(step, state_like)
            return self._restore(step, state_like)
        except _Damaged as damaged:
            intact = self._newest_intact(state_like, below=step)
            alternative = f"the newest intact one is step {intact}" if intact is not None else "no other is intact"
            raise CheckpointError(f"{damaged}; {alternative}") from None

    def restore_newest_intact(self, state_like):
        """(state, step) from the newest checkpoint that reads, or (None, 0) if there is none (training from scratch).

        Damaged checkpoints on the way are moved to ``<workdir>/checkpoints_damaged/`` (by process 0) with a
        warning. A readable checkpoint of a different model stops with CheckpointError: that is no damage.
        """
        for step in reversed(self.all_steps()):
            try:
                self.check_compatible(step, state_like)
                return self._restore(step, state_like), step
            except _Damaged as damaged:
                logging.warning("%s; moving it to %s and trying the one before.", damaged, self._damaged_folder)
                self._move_aside(step)
        return None, 0

    @property
    def _damaged_folder(self) -> str:
        return os.path.join(self.workdir, DAMAGED_FOLDER)

    def _read(self, step: int, read):
        try:
            with _quiet_failure():
                return read()
        except CheckpointError:
            raise
        except Exception as e:  # a damaged file surfaces as any of orbax's, tensorstore's, grain's or json's errors
            raise _Damaged(f"checkpoint {step} in {self.directory} is damaged ({_first_line(e)})") from e

    def _restore(self, step: int, state_like):
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        items = {STATE: ocp.args.StandardRestore(abstract)}
        restored = self._read(step, lambda: self._manager.restore(step, args=ocp.args.Composite(**items)))
        self._read(step, lambda: self.saved_config(step))
        return restored[STATE]

    def _newest_intact(self, state_like, below: int) -> int | None:
        for step in reversed([s for s in self.all_steps() if s < below]):
            try:
                self._restore(step, state_like)
                return step
            except _Damaged:
                continue
        return None

    def _move_aside(self, step: int):
        if jax.process_index() == 0:
            os.makedirs(self._damaged_folder, exist_ok=True)
            target = os.path.join(self._damaged_folder, str(step))
            suffix = 1
            while os.path.exists(target):
                target, suffix = os.path.join(self._damaged_folder, f"{step}.{suffix}"), suffix + 1
            shutil.move(os.path.join(self.directory, str(step)), target)
        self._manager.reload()

    def close(self):
        if self._manager:
            self._manager.close()


def _drop_copies_of_reraised_failures(record: std_logging.LogRecord) -> bool:
    """A failed orbax write or read is raised to its caller, which reports it in one line; orbax also logs the
    traceback of each failing background thread, and asyncio that of each failing task when it is collected, at
    any time, even after that line. Those copies are dropped; every other record passes."""
    orbax_thread = f"{os.sep}orbax{os.sep}" in record.pathname and "raised an exception" in str(record.msg)
    orbax_task = "exception was never retrieved" in str(record.msg) and "orbax" in record.getMessage()
    return not (orbax_thread or orbax_task)


for _name in ("absl", "asyncio"):
    std_logging.getLogger(_name).addFilter(_drop_copies_of_reraised_failures)


class _HoldOrbaxRecords(std_logging.Filter):
    """Holds back orbax's log records (a failed write logs each failing thread's traceback at ERROR)."""

    def __init__(self):
        super().__init__()
        self.held = []

    def filter(self, record: std_logging.LogRecord) -> bool:
        if f"{os.sep}orbax{os.sep}" in record.pathname:
            self.held.append(record)
            return False
        return True


@contextlib.contextmanager
def _quiet_failure():
    """Keeps the noise of a failed read or write off the console, and passes everything on if nothing failed.

    When one array of a restore or save fails, orbax logs each failing thread's traceback, and
    closes its event loop while TensorStore's other operations are still finishing, each of which
    then prints a traceback ("RuntimeError: Event loop is closed") through sys.stderr. The caller
    reports the failure in one line; the tracebacks add nothing. While the operation runs,
    sys.stderr and orbax's log records are held: passed on whole after a success; after a failure,
    a moment later, without tracebacks and without orbax's records. The abandoned operations' coroutines,
    collected later (at the latest when the process exits), would each warn that they were never awaited:
    after a failure that warning is silenced for the rest of the process.
    """
    real_stderr, captured = sys.stderr, io.StringIO()
    records, logger = _HoldOrbaxRecords(), std_logging.getLogger("absl")
    sys.stderr = captured
    logger.addFilter(records)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
        time.sleep(0.2)
        raise
    finally:
        sys.stderr = real_stderr
        logger.removeFilter(records)
        lines = captured.getvalue().splitlines(keepends=True)
        if failed:
            noise = ("Traceback (most recent call last):", " ", "^", "RuntimeError")
            lines = [line for line in lines if not line.startswith(noise) and "Event loop is closed" not in line]
        real_stderr.write("".join(lines))
        for record in [] if failed else records.held:
            logger.handle(record)


class _Damaged(CheckpointError):
    """A checkpoint that cannot be read; its message names it and the error."""
