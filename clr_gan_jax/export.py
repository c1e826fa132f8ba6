"""Loading a trained generator: from a run's latest checkpoint, or from an exported NumPy file.

An export is two files: ``generator.npz`` (the EMA generator's variables, flat keys
like 'params/UpConv_0/kernel', no pickle) and ``generator.json`` (the run's config,
the example shape and the step). `sample_from_npz` needs only these two files.
"""

import json
import os

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from clr_gan_jax import checkpoints, data, models, sharding, steps
from clr_gan_jax.validation import UserError


def checkpoint_steps(workdir: str) -> list[int]:
    """The steps of the checkpoints in ``workdir``, ascending."""
    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=None)
    steps_found = sorted(ocp.utils.checkpoint_steps(checkpointer.directory))
    checkpointer.close()
    return steps_found


def restore_ema_generator(config: ml_collections.ConfigDict, workdir: str, step: int | None = None):
    """(generator module, EMA variables, step) from the checkpoint at ``step`` (default: the latest) in ``workdir``."""
    from clr_gan_jax.train import create_gan, create_state

    checkpointer = checkpoints.Checkpointer(workdir, max_to_keep=config.train.keep_checkpoints)
    step = checkpointer.latest_step() if step is None else step
    if step is None:
        raise UserError(f"no checkpoint in {checkpointer.directory}: train first (--mode=train)")
    checkpointer.check_compatible(step, config)
    gan = create_gan(config)
    state = checkpointer.restore(step, create_state(gan, config, sharding.make_mesh()))
    checkpointer.close()
    return gan.generator, state.ema, step


def write_npz(path: str, variables: dict, config: ml_collections.ConfigDict, step: int):
    """Writes ``path`` (.npz) and the config beside it (.json)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(variables), sep="/")
    np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})
    meta = {"config": config.to_dict(), "example_shape": list(data.example_shape(config.data)), "step": step}
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(meta, f, indent=2)


def write_sample_grid(config: ml_collections.ConfigDict, workdir: str, num: int, seed: int, output: str | None = None) -> str:
    """A grid (or scatter plot) of ``num`` EMA-generator samples from the latest checkpoint; returns its path."""
    from clr_gan_jax import images, train

    generator, variables, step = restore_ema_generator(config, workdir)
    z = jax.random.normal(jax.random.key(seed), (num, config.model.z_dim))
    samples = np.asarray(jax.jit(steps.make_generate(generator))(variables, z))
    path = output or os.path.join(workdir, "samples", f"sample_{step:07d}_seed{seed}.png")
    images.save_png(path, train.make_sample_picture(config, data.create_source(config.data))(samples))
    return path


def export_run(config: ml_collections.ConfigDict, workdir: str, output: str | None = None) -> str:
    """Writes the latest checkpoint's EMA generator to ``output`` (default <workdir>/export/generator.npz)."""
    _, variables, step = restore_ema_generator(config, workdir)
    path = output or os.path.join(workdir, "export", "generator.npz")
    write_npz(path, variables, config, step)
    return path


def load_npz(path: str):
    """(generator module, variables, metadata) from an export written by `write_npz`."""
    meta_path = os.path.splitext(path)[0] + ".json"
    for p in (path, meta_path):
        if not os.path.exists(p):
            raise UserError(f"{p} does not exist: export a run with --mode=export first")
    with open(meta_path) as f:
        meta = json.load(f)
    with np.load(path, allow_pickle=False) as arrays:
        variables = traverse_util.unflatten_dict({k: arrays[k] for k in arrays.files}, sep="/")
    config = ml_collections.ConfigDict(meta["config"])
    generator, _ = models.create(config.model, tuple(meta["example_shape"]))
    return generator, variables, meta


def sample_from_npz(path: str, num: int, seed: int = 0) -> np.ndarray:
    """``num`` samples from an exported generator: uint8 (N, H, W, C) images, or float32 (N, 2) points.

    Example::

        from clr_gan_jax.export import sample_from_npz
        images = sample_from_npz("runs/digits/export/generator.npz", num=16, seed=0)
    """
    generator, variables, meta = load_npz(path)
    z = jax.random.normal(jax.random.key(seed), (num, meta["config"]["model"]["z_dim"]))
    samples = np.asarray(jax.jit(steps.make_generate(generator))(variables, z))
    if len(meta["example_shape"]) == 3:
        from clr_gan_jax.images import to_uint8

        return to_uint8(samples)
    return samples
