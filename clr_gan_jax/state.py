"""The train state: one pytree holding everything a step reads and writes, jitted, donated and checkpointed whole."""

from typing import Any

import flax
import jax


@flax.struct.dataclass
class NetState:
    """One network: its parameters, mutable collections and optimizer state.

    ``collections`` maps a flax collection name to its values: BatchNorm statistics
    (``batch_stats``), spectral-norm vectors (``spectral``), later StyleGAN2's w_avg; ``{}``
    for a network that has none.
    """

    params: Any
    collections: dict
    opt_state: Any

    def variables(self, params=None) -> dict:
        """The flax variables, with ``params`` in place of the stored parameters if given."""
        return {"params": self.params if params is None else params, **self.collections}


@flax.struct.dataclass
class TrainState:
    """The step counter, the networks by name, the generator's moving average and per-method state.

    ``ema`` holds the flax variables of the averaged generator (parameters and collections);
    ``aux`` holds what a method keeps between steps besides networks (e.g. the path-length
    mean, the augmentation probability), so that it is checkpointed and resumed bitwise.
    """

    step: jax.Array
    nets: dict[str, NetState]
    ema: dict
    aux: dict
