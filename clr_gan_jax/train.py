"""The host loop: build from the config, resume if the workdir has a checkpoint, run the jitted step, report.

The loop decides which of the method's phases run at each step (`Method.active_phases`),
and when to log, sample, evaluate and checkpoint; everything else happens inside the step.
It syncs with the device only at those intervals.

What it guarantees: nothing is written to the workdir before the config, the data source and
the memory estimate of the compiled step have been checked; one training run holds a workdir
at a time; no checkpoint holds a non-finite state (the state is checked before each save,
so a divergence never rotates out a good checkpoint); a damaged newest checkpoint is moved
aside and the run resumes from the newest intact one; SIGTERM and Ctrl-C stop at the next
step boundary with a checkpoint of that step.
"""

import contextlib
import os
import signal
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from clr_gan_jax import build, checkpoints, data, evaluate, export, images, resources, run_summary, sharding
from clr_gan_jax import workdir as workdir_lib
from clr_gan_jax.errors import DataError, TrainingDivergedError, UserError
from clr_gan_jax.objectives import plugin_names
from clr_gan_jax.state import TrainState
from clr_gan_jax.writers import MetricWriter, ProgressLine


class Interrupted(UserError):
    """Training stopped on a signal, after saving a checkpoint of the current step; ``signum`` sets the exit code."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class StopRequests(contextlib.AbstractContextManager):
    """SIGTERM (preemption, SLURM, ``kill``) and SIGINT (Ctrl-C) ask the loop to stop at the next step boundary.

    A second signal of either kind ends the process at once (the default action). Only the main
    thread can receive signals; elsewhere the handlers are not installed.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        self.signum = signum
        for s in self.SIGNALS:
            signal.signal(s, self._previous[s])

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def _first_nonfinite(history: list[tuple[int, dict]]):
    for step, metrics in history:
        for name, value in metrics.items():
            if not np.isfinite(value):
                return step, name, value
    return None


def step_batch(batch: dict, real_batches: int, mesh) -> dict:
    """A host batch of real_batches * B examples -> (real_batches, B, ...) global arrays, axis 1 split over the mesh."""
    local = {k: np.asarray(v).reshape(real_batches, -1, *np.shape(v)[1:]) for k, v in batch.items()}
    return sharding.put_batch(local, mesh, batch_dim=1)


def check_run(config: ml_collections.ConfigDict, workdir: str):
    """Everything a run checks before it writes anything: config, evaluation, workdir, data source, lock.

    Returns (mesh, experiment, source, lock), the lock not yet taken; `--dry_run` stops here.
    """
    mesh = sharding.make_mesh()
    experiment = build.build(config, mesh.size)
    evaluate.validate(config, mesh.size)
    workdir_lib.validate(workdir)
    source = data.create_source(config.data)
    shape = np.shape(source[0]["image"])
    if shape != experiment.example_shape:
        raise DataError(
            f"data.name={config.data.name!r}: the source's examples are {shape}, the config expects "
            f"{experiment.example_shape}: check data.resolution and data.channels"
        )
    lock = workdir_lib.RunLock(workdir, jax.process_index())
    lock.require_free()
    return mesh, experiment, source, lock


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains ``config`` in ``workdir`` (resuming from its newest intact checkpoint) and returns the final state."""
    mesh, experiment, source, lock = check_run(config, workdir)
    if jax.process_index() == 0:
        for name, table in run_summary.parameter_tables(experiment).items():
            logging.info("Parameters of %s:\n%s", name, table)
    train_step = build.train_step_fn(experiment, mesh)
    first_active = experiment.method.active_phases(0)  # every phase runs at step 0: the largest variant
    abstract_batch = build.abstract_batch(experiment, mesh, np.asarray(source[0]["image"]).dtype)
    start = time.monotonic()
    compiled = train_step.lower(build.abstract_state(experiment, mesh), abstract_batch, first_active).compile()
    needed = resources.require_fits(compiled, mesh)
    logging.info("Compiled the train step in %.1fs; it needs about %.2f GiB.", time.monotonic() - start, needed / 2**30)
    with lock, StopRequests() as stop:
        if jax.process_index() == 0:
            workdir_lib.write_versions(workdir)
        return _train(experiment, source, train_step, mesh, workdir, stop)


def _train(experiment: build.Experiment, source, train_step, mesh, workdir: str, stop: StopRequests) -> TrainState:
    config, method = experiment.config, experiment.method
    t = config.train
    is_writer = jax.process_index() == 0
    state = build.initial_state(experiment, mesh)
    checkpointer = checkpoints.Checkpointer(workdir, t.keep_checkpoints)
    restored, start_step = checkpointer.restore_newest_intact(state)
    if restored is not None:
        state = restored
        logging.info("Resumed from %s at step %d.", checkpointer.directory, start_step)
    if start_step >= t.steps:
        logging.info("Nothing to do: the checkpoint is at step %d of train.steps=%d.", start_step, t.steps)
        checkpointer.close()
        return state
    dataset = data.make_dataset(
        source,
        batch_size=experiment.images_per_step // jax.process_count(),
        seed=config.seed,
        mirror=config.data.mirror,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        start=start_step,
    )
    iterator = data.make_iterator(dataset, config.data.num_workers)

    generate = build.generate_fn(experiment)
    points = len(experiment.example_shape) == 1
    latents = build.fixed_latents(experiment, t.num_samples * (40 if points else 1))
    sample_picture = export.sample_picture_fn(experiment, source)
    writer = MetricWriter(workdir, resume_step=start_step) if is_writer else None
    progress = ProgressLine(t.steps, experiment.images_per_step)
    evaluation = (
        evaluate.PeriodicEvaluation(experiment, source, mesh, workdir, writer)
        if evaluate.metric_names(config.eval)
        else None
    )
    logging.info(
        "Training %s (%s, %s, plugins: %s) on %s for %d steps; %d devices, global batch %d; phases %s.",
        config.method,
        config.model.arch,
        config.loss.adversarial if config.method == "gan" else "its own losses",
        ", ".join(plugin_names(config)) or "none",
        config.data.name,
        t.steps,
        mesh.size,
        t.batch_size,
        ", ".join(f"{p.name} x{p.repeats}" + (f" every {p.every}" if p.every > 1 else "") for p in method.phases),
    )

    pending: list[tuple[int, dict]] = []
    interval_start, interval_step = time.monotonic(), start_step

    def last_good() -> str:
        last = checkpointer.latest_step()
        return (
            f"The last good checkpoint is step {last} in {checkpointer.directory}."
            if last
            else "No checkpoint was written."
        )

    def flush_metrics(step: int):
        """Fetches the metrics of the steps since the last flush: the loop's only regular host sync."""
        nonlocal pending, interval_start, interval_step
        history = [(s, {k: float(v) for k, v in m.items()}) for s, m in jax.device_get(pending)]
        pending = []
        bad = _first_nonfinite(history)
        if bad:
            raise TrainingDivergedError(f"{bad[1]} is {bad[2]} at step {bad[0]}; stopped without saving. {last_good()}")
        elapsed = time.monotonic() - interval_start
        steps_done = step - interval_step
        keys = {k for _, m in history for k in m}
        scalars = {k: float(np.mean([m[k] for _, m in history if k in m])) for k in sorted(keys)}
        if steps_done:
            scalars["steps_per_sec"] = steps_done / elapsed
            scalars["images_per_sec"] = steps_done * experiment.images_per_step / elapsed
        interval_start, interval_step = time.monotonic(), step
        if is_writer:
            writer.write_scalars(step, scalars)
            progress.print(step, scalars)

    def save(step: int):
        """Checkpoint ``step``, only if every value of the state is finite (else stop, naming the step)."""
        if pending:
            flush_metrics(step)
        if not bool(build.all_finite(state)):
            raise TrainingDivergedError(
                f"the train state holds NaN or Inf after step {step}; stopped without saving it. {last_good()}"
            )
        checkpointer.save(step, state, config)

    def write_samples(step: int):
        """The sample grid of ``step``; a failure to write it (a full disk) is a warning, not the end of the run."""
        picture = sample_picture(np.asarray(generate(sharding.local_replica(state.ema), latents)))
        try:
            images.save_png(os.path.join(workdir, "samples", f"step_{step:07d}.png"), picture)
            writer.write_image(step, "samples", picture)
        except OSError as e:
            logging.warning("Could not write the samples of step %d (%s); training goes on.", step, e)

    step = start_step
    try:
        for step in range(start_step + 1, t.steps + 1):
            batch = step_batch(next(iterator), method.real_batches, mesh)
            state, metrics = train_step(state, batch, method.active_phases(step - 1))
            pending.append((step, metrics))
            if step == start_step + 1:
                jax.block_until_ready(state)
                logging.info("First step took %.1fs.", time.monotonic() - interval_start)
                interval_start, interval_step = time.monotonic(), step  # throughput excludes the first step
            last = step == t.steps
            if (step % t.log_every == 0 or last) and pending:
                flush_metrics(step)
            if is_writer and (step % t.sample_every == 0 or last):
                write_samples(step)
            if evaluation and (step % config.eval.every == 0 or last):
                if pending:
                    flush_metrics(step)
                evaluation(step, state)
                interval_start, interval_step = time.monotonic(), step  # throughput excludes evaluation
            if step % t.checkpoint_every == 0 or last:
                save(step)
            if stop.signum is not None:
                break
        if stop.signum is not None:
            if checkpointer.latest_step() != step:
                save(step)
            name = signal.Signals(stop.signum).name
            raise Interrupted(
                f"stopped by {name} after step {step}; checkpoint {step} is in {checkpointer.directory}: "
                "rerun the same command to resume",
                stop.signum,
            )
    finally:
        checkpointer.close()
        if evaluation:
            evaluation.close()
        if writer:
            writer.close()
    return state
