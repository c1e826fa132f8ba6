"""The host loop: build from the config, resume if the workdir has a checkpoint, run the jitted step, report.

The loop decides which of the method's phases run at each step (`Method.active_phases`),
and when to log, sample, evaluate and checkpoint; everything else happens inside the step.
It syncs with the device only at those intervals.
"""

import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from clr_gan_jax import build, checkpoints, data, evaluate, export, images, sharding
from clr_gan_jax import workdir as workdir_lib
from clr_gan_jax.errors import TrainingDivergedError
from clr_gan_jax.state import TrainState
from clr_gan_jax.writers import MetricWriter, ProgressLine


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains ``config`` in ``workdir`` (resuming from its latest checkpoint) and returns the final state."""
    mesh = sharding.make_mesh()
    experiment = build.build(config, mesh.size)
    evaluate.validate(config, mesh.size)
    workdir_lib.validate(workdir)
    is_writer = jax.process_index() == 0
    t, method = config.train, experiment.method

    source = data.create_source(config.data)
    state = build.initial_state(experiment, mesh)
    dataset = data.make_dataset(
        source,
        batch_size=experiment.images_per_step // jax.process_count(),
        seed=config.seed,
        mirror=config.data.mirror,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    iterator = data.make_iterator(dataset, config.data.num_workers)

    checkpointer = checkpoints.Checkpointer(workdir, t.keep_checkpoints)
    start_step = checkpointer.latest_step() or 0
    if start_step:
        checkpointer.check_compatible(start_step, build.abstract_state(experiment))
        state = checkpointer.restore(start_step, state, iterator)
        logging.info("Resumed from %s at step %d.", checkpointer.directory, start_step)
    if start_step >= t.steps:
        logging.info("Nothing to do: the checkpoint is at step %d of train.steps=%d.", start_step, t.steps)
        checkpointer.close()
        return state

    train_step = build.train_step_fn(experiment, mesh)
    generate = build.generate_fn(experiment)
    points = len(experiment.example_shape) == 1
    latents = build.fixed_latents(experiment, t.num_samples * (40 if points else 1))
    sample_picture = export.sample_picture_fn(experiment, source)
    writer = MetricWriter(workdir) if is_writer else None
    progress = ProgressLine(t.steps)
    evaluation = (
        evaluate.PeriodicEvaluation(experiment, source, mesh, workdir, writer)
        if evaluate.metric_names(config.eval)
        else None
    )
    logging.info(
        "Training %s (%s, %s, %s) on %s for %d steps; %d devices, global batch %d; phases %s.",
        config.method,
        config.model.arch,
        config.loss.adversarial,
        "CLR on" if config.clr.enabled else "CLR off",
        config.data.name,
        t.steps,
        mesh.size,
        t.batch_size,
        ", ".join(f"{p.name} x{p.repeats}" + (f" every {p.every}" if p.every > 1 else "") for p in method.phases),
    )

    pending: list[tuple[int, dict]] = []
    interval_start, interval_step = time.monotonic(), start_step

    def flush_metrics(step: int):
        """Fetches the metrics of the steps since the last flush: the loop's only regular host sync."""
        nonlocal pending, interval_start, interval_step
        history = [(s, {k: float(v) for k, v in m.items()}) for s, m in jax.device_get(pending)]
        pending = []
        bad = _first_nonfinite(history)
        if bad:
            last = checkpointer.latest_step()
            raise TrainingDivergedError(
                f"{bad[1]} is {bad[2]} at step {bad[0]}; stopped without saving. "
                f"The last good checkpoint is step {last} in {checkpointer.directory}."
                if last
                else f"{bad[1]} is {bad[2]} at step {bad[0]}; stopped, no checkpoint was written."
            )
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

    try:
        for step in range(start_step + 1, t.steps + 1):
            batch = step_batch(next(iterator), method.real_batches, mesh)
            state, metrics = train_step(state, batch, method.active_phases(step - 1))
            pending.append((step, metrics))
            if step == start_step + 1:
                jax.block_until_ready(state)
                logging.info("First step (compilation included) took %.1fs.", time.monotonic() - interval_start)
                interval_start, interval_step = time.monotonic(), step  # throughput excludes compilation
            last = step == t.steps
            if (step % t.log_every == 0 or last) and pending:
                flush_metrics(step)
            if is_writer and (step % t.sample_every == 0 or last):
                picture = sample_picture(np.asarray(generate(sharding.local_replica(state.ema), latents)))
                images.save_png(os.path.join(workdir, "samples", f"step_{step:07d}.png"), picture)
                writer.write_image(step, "samples", picture)
            if evaluation and (step % config.eval.every == 0 or last):
                if pending:
                    flush_metrics(step)
                evaluation(step, state, iterator)
                interval_start, interval_step = time.monotonic(), step  # throughput excludes evaluation
            if step % t.checkpoint_every == 0 or last:
                if pending:
                    flush_metrics(step)
                checkpointer.save(step, state, iterator, config)
    finally:
        checkpointer.wait()
        checkpointer.close()
        if evaluation:
            evaluation.close()
        if writer:
            writer.close()
    return state
