"""Orbax checkpoints of (train state, data iterator position, config), asynchronous, keeping the last N.

Whether a checkpoint fits a config is decided by the arrays it holds: the saved tree's
paths, shapes and dtypes against the train state the config builds (`build.abstract_state`),
so any change that alters a parameter (architecture, widths, heads, optimizer) is refused
and any change that does not (learning rates, loss weights, the product dtype) is allowed.
"""

import os

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from clr_gan_jax.errors import CheckpointError

STATE, DATA, CONFIG = "state", "data", "config"


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def leaf_specs(tree) -> dict[str, tuple[tuple[int, ...], str]]:
    """{'nets/d/params/Conv_0/kernel': (shape, dtype name)} for every array of a state or of a checkpoint's metadata."""
    return {
        _path_name(path): (tuple(leaf.shape), str(leaf.dtype))
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    }


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


class Checkpointer:
    """Saves and restores checkpoints under ``<workdir>/checkpoints``."""

    def __init__(self, workdir: str, max_to_keep: int | None):
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True, enable_async_checkpointing=True),
            item_handlers={
                STATE: ocp.StandardCheckpointHandler(),
                DATA: grain.checkpoint.CheckpointHandler(),
                CONFIG: ocp.JsonCheckpointHandler(),
            },
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, data_iterator: grain.DatasetIterator, config: ml_collections.ConfigDict):
        """Starts an asynchronous save; the next save or `wait` waits for it to finish."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                **{
                    STATE: ocp.args.StandardSave(state),
                    DATA: grain.checkpoint.CheckpointSave(data_iterator),
                    CONFIG: ocp.args.JsonSave(config.to_dict()),
                }
            ),
        )

    def saved_config(self, step: int) -> dict:
        return self._manager.restore(step, args=ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()}))[CONFIG]

    def check_compatible(self, step: int, abstract_state):
        """Raises CheckpointError unless the checkpoint at ``step`` holds arrays exactly like ``abstract_state``."""
        mismatch = first_mismatch(leaf_specs(self._manager.item_metadata(step)[STATE]), leaf_specs(abstract_state))
        if mismatch:
            raise CheckpointError(
                f"{self.directory} holds a checkpoint (step {step}) of a different model: {mismatch}. "
                "Use a new --workdir, or the config the run was started with."
            )

    def restore(self, step: int, state_like, data_iterator: grain.DatasetIterator | None = None):
        """Restores the train state onto the shardings of ``state_like``, and the iterator position in place."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        items = {STATE: ocp.args.StandardRestore(abstract)}
        if data_iterator is not None:
            items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
        return self._manager.restore(step, args=ocp.args.Composite(**items))[STATE]

    def wait(self):
        self._manager.wait_until_finished()

    def close(self):
        self._manager.close()
