"""The train state: one pytree holding everything a step reads and writes."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class NetState:
    """One network's parameters, BatchNorm statistics (empty dict if it has none) and optimizer state."""

    params: Any
    batch_stats: Any
    opt_state: Any

    def variables(self) -> dict:
        return {"params": self.params, "batch_stats": self.batch_stats}


@flax.struct.dataclass
class TrainState:
    """G, D, the exponential moving average of G (params and BN statistics) and the G-step counter."""

    step: jax.Array
    g: NetState
    d: NetState
    ema: dict


def init_net(module, tx: optax.GradientTransformation, rng: jax.Array, example: jax.Array) -> NetState:
    variables = module.init(rng, example, train=False)
    params = variables["params"]
    return NetState(params=params, batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params))


def init_state(generator, discriminator, g_tx, d_tx, rng: jax.Array, z_dim: int, data_shape) -> TrainState:
    """Initialises both networks (on two example inputs of batch 1) and a copy of G as its EMA."""
    g_rng, d_rng = jax.random.split(rng)
    g = init_net(generator, g_tx, g_rng, jnp.zeros((1, z_dim), jnp.float32))
    d = init_net(discriminator, d_tx, d_rng, jnp.zeros((1, *data_shape), jnp.float32))
    return TrainState(step=jnp.zeros((), jnp.int32), g=g, d=d, ema=jax.tree.map(jnp.copy, g.variables()))
