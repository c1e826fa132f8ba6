"""The training loop: build from the config, resume if the workdir has a checkpoint, train, report."""

import functools
import os
import time

import jax
import ml_collections
import numpy as np
import optax
from absl import logging

from clr_gan_jax import checkpoints, data, evaluate, images, losses, models, sharding, steps
from clr_gan_jax.state import TrainState, init_state
from clr_gan_jax.validation import validate_config, validate_workdir
from clr_gan_jax.writers import MetricWriter, ProgressLine


class TrainingDivergedError(Exception):
    """A loss or gradient norm became NaN or Inf; no checkpoint was written after it."""


def create_gan(config: ml_collections.ConfigDict) -> steps.GAN:
    """The networks, optimizers and objective described by ``config`` (no data needed)."""
    generator, discriminator = models.create(config.model, data.example_shape(config.data))
    o = config.optim
    return steps.GAN(
        generator=generator,
        discriminator=discriminator,
        g_tx=optax.adam(o.g_lr, o.b1, o.b2),
        d_tx=optax.adam(o.d_lr, o.b1, o.b2),
        loss=losses.create(config),
        z_dim=config.model.z_dim,
        ema_decay=config.train.ema_decay,
        n_critic=config.train.n_critic,
        seed=config.seed,
        reuse_fakes=config.train.reuse_fakes,
    )


def create_state(gan: steps.GAN, config: ml_collections.ConfigDict, mesh) -> TrainState:
    """The initial state, replicated over the mesh.

    Initialised in one jitted computation (eager init compiles every layer separately), which
    every process runs identically from the seed, so no values cross processes.
    """
    example_shape = data.example_shape(config.data)

    def init():
        key = jax.random.key(config.seed)
        return init_state(gan.generator, gan.discriminator, gan.g_tx, gan.d_tx, key, gan.z_dim, example_shape)

    return jax.jit(init, out_shardings=sharding.replicated(mesh))()


def fixed_latents(config: ml_collections.ConfigDict) -> jax.Array:
    """The latents of every sample grid of a run (40x more points for 2-D scatter plots)."""
    n = config.train.num_samples * (40 if config.data.name in data.POINT_DATASETS else 1)
    return jax.random.normal(jax.random.key(config.seed + 1), (n, config.model.z_dim))


def make_sample_picture(config, source):
    """samples -> a grid of images, or a scatter plot of generated (red) over real (grey) points.

    The real points of the scatter plots are read from ``source`` once, here.
    """
    if config.data.name in data.POINT_DATASETS:
        real = np.stack([source[i]["image"] for i in range(min(len(source), 2000))])
        return lambda samples: images.scatter_plot(real, samples)
    return lambda samples: images.image_grid(images.to_uint8(samples))


def _first_nonfinite(history: list[tuple[int, dict]]):
    for step, metrics in history:
        for name, value in metrics.items():
            if not np.isfinite(value):
                return step, name, value
    return None


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
    """Trains ``config`` in ``workdir`` (resuming from its latest checkpoint) and returns the final state."""
    mesh = sharding.make_mesh()
    validate_config(config, mesh.size)
    validate_workdir(workdir)
    is_writer = jax.process_index() == 0
    t = config.train

    source = data.create_source(config.data)
    gan = create_gan(config)
    state = create_state(gan, config, mesh)
    local_batch = t.n_critic * t.batch_size // jax.process_count()
    dataset = data.make_dataset(
        source, batch_size=local_batch, seed=config.seed, mirror=config.data.mirror,
        process_index=jax.process_index(), process_count=jax.process_count(),
    )
    iterator = data.make_iterator(dataset, config.data.num_workers)

    checkpointer = checkpoints.Checkpointer(workdir, t.keep_checkpoints)
    start_step = checkpointer.latest_step() or 0
    if start_step:
        checkpointer.check_compatible(start_step, config)
        state = checkpointer.restore(start_step, state, iterator)
        logging.info("Resumed from %s at step %d.", checkpointer.directory, start_step)
    if start_step >= t.steps:
        logging.info("Nothing to do: the checkpoint is at step %d of train.steps=%d.", start_step, t.steps)
        checkpointer.close()
        return state

    train_step = jax.jit(
        functools.partial(steps.train_step, gan, sharding=sharding.batch_sharded(mesh)),
        donate_argnums=0,
        out_shardings=sharding.replicated(mesh),
    )
    generate = jax.jit(steps.make_generate(gan.generator))
    latents = fixed_latents(config)
    sample_picture = make_sample_picture(config, source)
    writer = MetricWriter(workdir) if is_writer else None
    progress = ProgressLine(t.steps)
    evaluation = (
        evaluate.PeriodicEvaluation(config, gan.generator, source, mesh, workdir, writer)
        if evaluate.metric_names(config.eval) else None
    )
    logging.info(
        "Training %s (%s, CLR %s) on %s for %d steps; %d devices, global batch %d x %d D steps.",
        config.model.arch, config.loss.adversarial, "on" if config.clr.enabled else "off",
        config.data.name, t.steps, mesh.size, t.batch_size, t.n_critic,
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
                if last else f"{bad[1]} is {bad[2]} at step {bad[0]}; stopped, no checkpoint was written."
            )
        elapsed = time.monotonic() - interval_start
        steps_done = step - interval_step
        scalars = {k: float(np.mean([m[k] for _, m in history])) for k in history[-1][1]}
        if steps_done:
            scalars["steps_per_sec"] = steps_done / elapsed
            scalars["images_per_sec"] = steps_done * t.n_critic * t.batch_size / elapsed
        interval_start, interval_step = time.monotonic(), step
        if is_writer:
            writer.write_scalars(step, scalars)
            progress.print(step, scalars)

    try:
        for step in range(start_step + 1, t.steps + 1):
            batch = next(iterator)["image"]
            reals = sharding.put_batch(batch.reshape(t.n_critic, -1, *batch.shape[1:]), mesh, batch_dim=1)
            state, metrics = train_step(state, reals)
            pending.append((step, metrics))
            if step == start_step + 1:
                jax.block_until_ready(state)
                logging.info("First step (compilation included) took %.1fs.", time.monotonic() - interval_start)
                interval_start, interval_step = time.monotonic(), step  # throughput excludes compilation
            last = step == t.steps
            if step % t.log_every == 0 or last:
                if pending:
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
