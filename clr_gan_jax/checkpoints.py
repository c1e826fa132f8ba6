"""Orbax checkpoints of (train state, data iterator position, config), asynchronous, keeping the last N."""

import json
import os

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from clr_gan_jax.validation import UserError

# Config sections that fix the shapes of the saved arrays: a checkpoint only resumes under the same values.
ARCHITECTURE_KEYS = ("model", "data.name", "data.resolution")
# model fields a resumed run may change: parameters are float32 whatever the product dtype
FREE_MODEL_KEYS = ("matmul_dtype",)


def _lookup(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config.get(part, {}) if isinstance(config, dict) else {}
    if dotted == "model":
        config = {k: v for k, v in config.items() if k not in FREE_MODEL_KEYS}
    return config


class Checkpointer:
    """Saves and restores checkpoints under ``<workdir>/checkpoints``."""

    def __init__(self, workdir: str, max_to_keep: int):
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=True),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, data_iterator: grain.DatasetIterator, config: ml_collections.ConfigDict):
        """Starts an asynchronous save; the next save or `wait` waits for it to finish."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(data_iterator),
                config=ocp.args.JsonSave(config.to_dict()),
            ),
        )

    def saved_config(self, step: int) -> dict:
        return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]

    def check_compatible(self, step: int, config: ml_collections.ConfigDict):
        """Refuses to resume a checkpoint whose architecture differs from ``config``'s."""
        saved, current = self.saved_config(step), config.to_dict()
        for key in ARCHITECTURE_KEYS:
            if _lookup(saved, key) != _lookup(current, key):
                raise UserError(
                    f"{self.directory} holds a checkpoint (step {step}) of a different model: {key} was "
                    f"{json.dumps(_lookup(saved, key))}, the config says {json.dumps(_lookup(current, key))}. "
                    "Use a new --workdir, or the config the run was started with."
                )

    def restore(self, step: int, state_like, data_iterator: grain.DatasetIterator | None = None):
        """Restores the train state onto the shardings of ``state_like``, and the iterator position in place."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        items = {"state": ocp.args.StandardRestore(abstract)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        return self._manager.restore(step, args=ocp.args.Composite(**items))["state"]

    def wait(self):
        self._manager.wait_until_finished()

    def close(self):
        self._manager.close()
