"""Adversarial losses by name (``loss.adversarial``), as the GAN zoo defines them.

Each is a pair of pure functions of D's logits, so each can be checked against a hand computation:
  vanilla  D: (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2, BCE on logits = softplus;  G: BCE(D(G(z)), 1) (non-saturating)
  hinge    D: mean relu(1 - D(x)) + mean relu(1 + D(G(z)));  G: -mean D(G(z))
  lsgan    D: (MSE(D(x), 1) + MSE(D(G(z)), 0)) / 2 (a=0, b=1);  G: MSE(D(G(z)), 1) / 2 (c=1)
  wgan     D: mean D(G(z)) - mean D(x);  G: -mean D(G(z))  (with weight clipping or a gradient penalty)
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from clr_gan_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Adversarial:
    """``d(real_logits, fake_logits)`` and ``g(fake_logits)``: scalar losses, each minimised by its network."""

    d: Callable[[jax.Array, jax.Array], jax.Array]
    g: Callable[[jax.Array], jax.Array]


ADVERSARIAL = Registry("loss.adversarial")

ADVERSARIAL.register("vanilla")(
    Adversarial(
        d=lambda real, fake: 0.5 * (jax.nn.softplus(-real).mean() + jax.nn.softplus(fake).mean()),
        g=lambda fake: jax.nn.softplus(-fake).mean(),
    )
)
ADVERSARIAL.register("hinge")(
    Adversarial(
        d=lambda real, fake: jax.nn.relu(1.0 - real).mean() + jax.nn.relu(1.0 + fake).mean(),
        g=lambda fake: -fake.mean(),
    )
)
ADVERSARIAL.register("lsgan")(
    Adversarial(
        d=lambda real, fake: 0.5 * (jnp.square(real - 1.0).mean() + jnp.square(fake).mean()),
        g=lambda fake: 0.5 * jnp.square(fake - 1.0).mean(),
    )
)
ADVERSARIAL.register("wgan")(
    Adversarial(
        d=lambda real, fake: fake.mean() - real.mean(),
        g=lambda fake: -fake.mean(),
    )
)
