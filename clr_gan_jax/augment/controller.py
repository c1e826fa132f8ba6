"""The adaptive augmentation probability of StyleGAN2-ADA, as pure functions over a small pytree.

Every D evaluation on augmented reals adds the signs of its logits (``accumulate``). Every ``interval`` steps
``adjust`` moves p by ``batch_size * interval / (ada_kimg * 1000)``: up when the overfitting heuristic
``r_t = E[sign(D(aug(real)))]`` since the last move exceeds the target, down when below it (never below 0, no upper
bound), and starts a new sum. Inside a jitted step the logits are the global batch, so the sums cover all devices.
"""

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class AdaState:
    """p and the sign statistics of D on augmented reals since the last adjustment (float32 scalars)."""

    p: jax.Array
    sign_sum: jax.Array
    sign_count: jax.Array


def init(p: float = 0.0) -> AdaState:
    zero = jnp.zeros((), jnp.float32)
    return AdaState(p=jnp.asarray(p, jnp.float32), sign_sum=zero, sign_count=zero)


def accumulate(state: AdaState, real_logits: jax.Array) -> AdaState:
    """Adds the signs of D's logits on augmented real images (any shape; each element counts once)."""
    logits = jax.lax.stop_gradient(real_logits).astype(jnp.float32)
    return state.replace(sign_sum=state.sign_sum + jnp.sign(logits).sum(), sign_count=state.sign_count + logits.size)


def adjusted_p(p, mean_sign, *, target: float, batch_size: int, interval: int, ada_kimg: float) -> jax.Array:
    """``max(p + sign(mean_sign - target) * batch_size * interval / (ada_kimg * 1000), 0)``."""
    step = batch_size * interval / (ada_kimg * 1000)
    return jnp.maximum(p + jnp.sign(mean_sign - target) * step, 0.0)


def adjust(
    state: AdaState, *, target: float, batch_size: int, interval: int = 4, ada_kimg: float = 500, due=True
) -> AdaState:
    """Moves p from the signs gathered since the last adjustment and clears them, where ``due`` (a traced bool,
    e.g. ``(step + 1) % interval == 0``); otherwise returns the state unchanged. With no signs gathered p stays.

    StyleGAN2-ADA's defaults: target 0.6, interval 4 steps, ada_kimg 500 (100 when resuming).
    """
    mean_sign = state.sign_sum / jnp.maximum(state.sign_count, 1)
    moved = adjusted_p(state.p, mean_sign, target=target, batch_size=batch_size, interval=interval, ada_kimg=ada_kimg)
    due = jnp.asarray(due) & (state.sign_count > 0)
    zero = jnp.zeros_like(state.sign_sum)
    return AdaState(
        p=jnp.where(due, moved, state.p),
        sign_sum=jnp.where(due, zero, state.sign_sum),
        sign_count=jnp.where(due, zero, state.sign_count),
    )
