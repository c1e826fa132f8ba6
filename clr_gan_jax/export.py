"""Loading a trained generator: from a run's checkpoints, or from an exported NumPy file.

An export is two files: ``generator.npz`` (the EMA generator's variables, flat keys
like 'params/UpConv_0/kernel', no pickle) and ``generator.json`` (the config the run was
trained with, the example shape and the step). `sample_from_npz` needs only these two files.
"""

import json
import os

import jax
import ml_collections
import numpy as np
from flax import traverse_util

from clr_gan_jax import build, checkpoints, data, images, sharding
from clr_gan_jax.errors import UserError


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps of the checkpoints in ``workdir``, ascending."""
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None)
    steps = checkpointer.all_steps()
    checkpointer.close()
    return steps


def restore_ema(experiment: build.Experiment, workdir: str, step: int | None = None) -> tuple[dict, int]:
    """(EMA generator variables, step) from the checkpoint at ``step`` (default: the latest) in ``workdir``."""
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None)
    try:
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise UserError(f"no checkpoint in {checkpointer.directory}: train first (--mode=train)")
        checkpointer.check_compatible(step, build.abstract_state(experiment))
        state = checkpointer.restore(step, build.abstract_state(experiment, sharding.make_mesh()))
        return state.ema, step
    finally:
        checkpointer.close()


def write_npz(path: str, variables: dict, config: ml_collections.ConfigDict, example_shape, step: int):
    """Writes ``path`` (.npz) and the config beside it (.json)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(variables), sep="/")
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
    meta = {"config": config.to_dict(), "example_shape": list(example_shape), "step": step}
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=2)


def sample_picture_fn(experiment: build.Experiment, source):
    """samples -> a grid of images, or a scatter plot of generated (red) over real (grey) points.

    The real points of the scatter plots are read from ``source`` once, here.
    """
    if len(experiment.example_shape) == 1:
        real = np.stack([source[i]["image"] for i in range(min(len(source), 2000))])
        return lambda samples: images.scatter_plot(real, samples)
    return lambda samples: images.image_grid(images.to_uint8(samples))


def write_sample_grid(
    config: ml_collections.ConfigDict, workdir: str, num: int, seed: int, output: str | None = None
) -> str:
    """A grid (or scatter plot) of ``num`` EMA-generator samples from the latest checkpoint; returns its path."""
    experiment = build.build(config)
    variables, step = restore_ema(experiment, workdir)
    latents = experiment.method.sample_latents(jax.random.key(seed), num)
    samples = np.asarray(build.generate_fn(experiment)(variables, latents))
    path = output or os.path.join(workdir, "samples", f"sample_{step:07d}_seed{seed}.png")
    images.save_png(path, sample_picture_fn(experiment, data.create_source(config.data))(samples))
    return path


def export_run(config: ml_collections.ConfigDict, workdir: str, output: str | None = None) -> str:
    """Writes the latest checkpoint's EMA generator to ``output`` (default <workdir>/export/generator.npz).

    The JSON beside it records the config saved in the checkpoint, i.e. the one the run was trained with.
    """
    experiment = build.build(config)
    variables, step = restore_ema(experiment, workdir)
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None)
    saved_config = ml_collections.ConfigDict(checkpointer.saved_config(step))
    checkpointer.close()
    path = output or os.path.join(workdir, "export", "generator.npz")
    write_npz(path, variables, saved_config, experiment.example_shape, step)
    return path


def load_npz(path: str) -> tuple[build.Experiment, dict, dict]:
    """(experiment, variables, metadata) from an export written by `write_npz`; reads no data."""
    meta_path = os.path.splitext(path)[0] + ".json"
    for p in (path, meta_path):
        if not os.path.exists(p):
            raise UserError(f"{p} does not exist: export a run with --mode=export first")
    with open(meta_path) as f:
        meta = json.load(f)
    with np.load(path, allow_pickle=False) as arrays:
        variables = traverse_util.unflatten_dict({k: arrays[k] for k in arrays.files}, sep="/")
    experiment = build.build(ml_collections.ConfigDict(meta["config"]), example_shape=tuple(meta["example_shape"]))
    return experiment, variables, meta


def sample_from_npz(path: str, num: int, seed: int = 0) -> np.ndarray:
    """``num`` samples from an exported generator: uint8 (N, H, W, C) images, or float32 (N, 2) points.

    Example::

        from clr_gan_jax.export import sample_from_npz
        images = sample_from_npz("runs/digits/export/generator.npz", num=16, seed=0)
    """
    experiment, variables, _ = load_npz(path)
    latents = experiment.method.sample_latents(jax.random.key(seed), num)
    samples = np.asarray(build.generate_fn(experiment)(variables, latents))
    return images.to_uint8(samples) if len(experiment.example_shape) == 3 else samples
