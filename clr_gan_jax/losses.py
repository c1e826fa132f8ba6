"""Adversarial losses, the R1 penalty and CLR-GAN's two consistency terms.

All functions are pure and take logits / arrays, never modules, so each can be
checked against a hand computation. Which network a CLR term trains is decided in
`steps.py` by where the gradient is stopped; the docstrings say which.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

ADVERSARIAL = ("vanilla", "hinge", "lsgan")
DISTANCES = ("l1", "mse")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Plain hyperparameters of the objective (hashable, so it can parameterise a jitted step)."""

    adversarial: str = "vanilla"
    r1_gamma: float = 0.0
    clr: bool = True
    w_clr: float = 5.0
    w_rec: float = 0.5
    distance: str = "mse"


def create(config: ml_collections.ConfigDict) -> LossConfig:
    return LossConfig(
        adversarial=config.loss.adversarial,
        r1_gamma=float(config.loss.r1_gamma),
        clr=bool(config.clr.enabled),
        w_clr=float(config.clr.w_clr),
        w_rec=float(config.clr.w_rec),
        distance=config.clr.distance,
    )


def d_adversarial(kind: str, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """D's adversarial loss, as in the GAN zoo.

    vanilla: (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2, with BCE on logits = softplus.
    hinge:   mean relu(1 - D(x)) + mean relu(1 + D(G(z))).
    lsgan:   (MSE(D(x), 1) + MSE(D(G(z)), 0)) / 2  (a=0, b=1).
    """
    if kind == "vanilla":
        return 0.5 * (jax.nn.softplus(-real_logits).mean() + jax.nn.softplus(fake_logits).mean())
    if kind == "hinge":
        return jax.nn.relu(1.0 - real_logits).mean() + jax.nn.relu(1.0 + fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * (jnp.square(real_logits - 1.0).mean() + jnp.square(fake_logits).mean())
    raise ValueError(f"loss.adversarial must be one of {ADVERSARIAL}, got {kind!r}")


def g_adversarial(kind: str, fake_logits: jax.Array) -> jax.Array:
    """G's adversarial loss: non-saturating BCE(D(G(z)), 1); hinge -mean D(G(z)); lsgan MSE(D(G(z)), 1) / 2."""
    if kind == "vanilla":
        return jax.nn.softplus(-fake_logits).mean()
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "lsgan":
        return 0.5 * jnp.square(fake_logits - 1.0).mean()
    raise ValueError(f"loss.adversarial must be one of {ADVERSARIAL}, got {kind!r}")


def r1_penalty(gamma: float, real_input_grads: jax.Array) -> jax.Array:
    """(gamma / 2) E ||grad_x D(x)||^2 over real images."""
    squared_norms = jnp.square(real_input_grads).reshape(real_input_grads.shape[0], -1).sum(axis=1)
    return 0.5 * gamma * squared_norms.mean()


def distance(kind: str, a: jax.Array, b: jax.Array) -> jax.Array:
    """Mean absolute error (the paper's L1) or mean squared error (the official code)."""
    if kind == "l1":
        return jnp.abs(a - b).mean()
    if kind == "mse":
        return jnp.square(a - b).mean()
    raise ValueError(f"clr.distance must be one of {DISTANCES}, got {kind!r}")


def latent_restoration(cfg: LossConfig, z: jax.Array, phi_of_fake: jax.Array) -> jax.Array:
    """w_clr * dist(z, phi(G(z))): D must recover the latent of a fake. Trains D only."""
    return cfg.w_clr * distance(cfg.distance, z, phi_of_fake)


def reconstruction(cfg: LossConfig, real: jax.Array, reconstructed: jax.Array) -> jax.Array:
    """w_rec * dist(x, G(phi(x))): G must rebuild a real image from D's code of it. Trains G only."""
    return cfg.w_rec * distance(cfg.distance, real, reconstructed)
