"""Adversarial losses by name (``loss.adversarial``), as the GAN zoo defines them.

Each is built from the config (``build(config) -> Adversarial``); these four are fixed pairs of pure functions of
D's logits, so each can be checked against a hand computation (RealnessGAN's, `objectives.realness`, reads its
config section and D's logits on the reals in G's loss too):
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
    """``d(real_logits, fake_logits)`` and ``g(fake_logits, real_logits)``: scalar losses, each minimised by its
    network. ``g`` reads D's logits on the reals only when ``g_reads_real`` (otherwise it gets None). ``outputs``
    is the width of D's logits the loss reads (1: a scalar logit per example, logits (N,))."""

    d: Callable[[jax.Array, jax.Array], jax.Array]
    g: Callable[[jax.Array, jax.Array | None], jax.Array]
    g_reads_real: bool = False
    outputs: int = 1


ADVERSARIAL = Registry("loss.adversarial")


def _fixed(name: str, adversarial: Adversarial) -> None:
    """Registers a loss without hyperparameters: its builder ignores the config."""
    ADVERSARIAL.register(name)(lambda config: adversarial)


VANILLA = Adversarial(
    d=lambda real, fake: 0.5 * (jax.nn.softplus(-real).mean() + jax.nn.softplus(fake).mean()),
    g=lambda fake, real=None: jax.nn.softplus(-fake).mean(),
)
_fixed("vanilla", VANILLA)
_fixed(
    "hinge",
    Adversarial(
        d=lambda real, fake: jax.nn.relu(1.0 - real).mean() + jax.nn.relu(1.0 + fake).mean(),
        g=lambda fake, real=None: -fake.mean(),
    ),
)
_fixed(
    "lsgan",
    Adversarial(
        d=lambda real, fake: 0.5 * (jnp.square(real - 1.0).mean() + jnp.square(fake).mean()),
        g=lambda fake, real=None: 0.5 * jnp.square(fake - 1.0).mean(),
    ),
)
_fixed(
    "wgan",
    Adversarial(
        d=lambda real, fake: fake.mean() - real.mean(),
        g=lambda fake, real=None: -fake.mean(),
    ),
)
