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

from clr_gan_jax import build, checkpoints, data, images, npz, sharding
from clr_gan_jax.errors import UserError


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps of the checkpoints in ``workdir``, ascending."""
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None, create=False)
    steps = checkpointer.all_steps()
    checkpointer.close()
    return steps


def restore_ema(experiment: build.Experiment, workdir: str, step: int | None = None) -> tuple[dict, int]:
    """(EMA generator variables, step) from the checkpoint at ``step`` (default: the latest) in ``workdir``.

    Reads only: a mistyped workdir gets an error, not an empty checkpoints folder.
    """
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None, create=False)
    try:
        available = checkpointer.all_steps()
        if not available:
            raise UserError(
                f"no checkpoint in {checkpointer.directory}: train first (--mode=train), or check --workdir"
            )
        step = available[-1] if step is None else step
        if step not in available:
            raise UserError(f"--step={step}: no such checkpoint in {checkpointer.directory}; it has steps {available}")
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


def scatter_reals(source, count: int = 2000) -> np.ndarray:
    """``count`` real points spread evenly over ``source``, whose examples may be ordered by mode (Ring8's first
    2000 points hold 5 of its 8 modes)."""
    indices = np.linspace(0, len(source) - 1, min(len(source), count)).round().astype(int)
    return data.read_batch(source, indices)["image"]


def sample_picture_fn(experiment: build.Experiment, source):
    """samples -> a grid of images (one row per class for a conditional model, see `build.picture_latents`; with
    its channels apart beside it for stacked digits), or a scatter plot of generated (red) over real (grey) points.

    The real points of the scatter plots are read from ``source`` once, here.
    """
    if len(experiment.example_shape) == 1:
        real = scatter_reals(source)
        return lambda samples: images.scatter_plot(real, samples)
    stacked = data.is_stacked(experiment.config.data)

    def picture(samples):
        grid = images.image_grid(images.to_uint8(samples), columns=build.grid_columns(experiment, len(samples)))
        return images.with_channels_apart(grid) if stacked else grid

    return picture


def write_sample_grid(
    config: ml_collections.ConfigDict,
    workdir: str,
    num: int,
    seed: int,
    output: str | None = None,
    step: int | None = None,
) -> str:
    """A grid (or scatter plot) of ``num`` EMA-generator samples of checkpoint ``step`` (default: the latest)."""
    experiment = build.build(config)
    variables, step = restore_ema(experiment, workdir, step)
    latents = build.picture_latents(experiment, num, jax.random.key(seed))
    samples = np.asarray(build.generate_fn(experiment)(variables, latents))
    path = output or os.path.join(workdir, "samples", f"sample_{step:07d}_seed{seed}.png")
    images.save_png(path, sample_picture_fn(experiment, data.create_source(config.data))(samples))
    return path


def export_run(
    config: ml_collections.ConfigDict, workdir: str, output: str | None = None, step: int | None = None
) -> str:
    """Writes the EMA generator of checkpoint ``step`` (default: the latest) to ``output``
    (default <workdir>/export/generator.npz).

    The JSON beside it records the config saved in the checkpoint, i.e. the one the run was trained with.
    """
    experiment = build.build(config)
    variables, step = restore_ema(experiment, workdir, step)
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None, create=False)
    saved_config = ml_collections.ConfigDict(checkpointer.saved_config(step))
    checkpointer.close()
    path = output or os.path.join(workdir, "export", "generator.npz")
    write_npz(path, variables, saved_config, experiment.example_shape, step)
    return path


def load_npz(path: str) -> tuple[build.Experiment, dict, dict]:
    """(experiment, variables, metadata) from an export written by `write_npz`; reads no data.

    One-line UserErrors for a missing, truncated or non-npz file, a missing description and NaN weights.
    """
    meta_path = os.path.splitext(path)[0] + ".json"
    fix = "export the run again with --mode=export"
    flat = npz.read(path, "The exported generator", fix)
    npz.require_finite(flat, "The exported generator", path, "the run diverged; export an earlier checkpoint (--step)")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        experiment = build.build(ml_collections.ConfigDict(meta["config"]), example_shape=tuple(meta["example_shape"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{meta_path}, the description of {path}, is missing or unreadable ({e}): {fix}") from None
    return experiment, npz.unflatten(flat), meta


def sample_from_npz(path: str, num: int, seed: int = 0) -> np.ndarray:
    """``num`` samples from an exported generator: uint8 (N, H, W, C) images, or float32 (N, 2) points.

    Example::

        from clr_gan_jax.export import sample_from_npz
        images = sample_from_npz("runs/digits/export/generator.npz", num=16, seed=0)
    """
    experiment, variables, _ = load_npz(path)
    latents = build.picture_latents(experiment, num, jax.random.key(seed))
    samples = np.asarray(build.generate_fn(experiment)(variables, latents))
    return images.to_uint8(samples) if len(experiment.example_shape) == 3 else samples
