"""Penalties on D's input gradients: R1 on reals and WGAN-GP's gradient penalty on interpolates.

Both take the gradients of D's summed logits with respect to its input (each example's
gradient is that example's own, since examples do not interact except through BatchNorm).
"""

import jax
import jax.numpy as jnp

INTERPOLATIONS = ("per_sample", "per_batch")


def squared_norms(input_grads: jax.Array) -> jax.Array:
    """(N, ...) -> (N,): each example's squared L2 norm."""
    return jnp.square(input_grads).reshape(input_grads.shape[0], -1).sum(axis=1)


def r1(input_grads: jax.Array, gamma: float) -> jax.Array:
    """(gamma / 2) E ||grad_x D(x)||^2 over real images (Mescheder et al. 2018)."""
    return 0.5 * gamma * squared_norms(input_grads).mean()


def gradient_penalty(input_grads: jax.Array, weight: float) -> jax.Array:
    """weight * E (||grad D(x_hat)||_2 - 1)^2 (Gulrajani et al. 2017)."""
    return weight * jnp.square(jnp.sqrt(squared_norms(input_grads)) - 1.0).mean()


def interpolate(real: jax.Array, fake: jax.Array, rng: jax.Array, interpolation: str) -> jax.Array:
    """x_hat = a * real + (1 - a) * fake, a ~ U(0, 1) per example (the paper) or once per batch (the GAN zoo)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    count = real.shape[0] if interpolation == "per_sample" else 1
    alpha = jax.random.uniform(rng, (count,) + (1,) * (real.ndim - 1), real.dtype)
    return alpha * real + (1.0 - alpha) * fake
