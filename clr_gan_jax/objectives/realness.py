"""RealnessGAN (Xiangli et al., ICLR 2020) as an adversarial loss (``loss.adversarial='realness'``).

D's logits are (N, n) with n = ``model.d_outputs`` outcomes; softmax(D(x)) is D's distribution of realness.
Two anchors, A0 (fake) and A1 (real), are fixed distributions over the outcomes; with KL(p || D) read as
KL(p || softmax(logits)), averaged over the batch:

  D:                  KL(A1 || D(x)) + KL(A0 || D(G(z)))
  G, objective 1:     -KL(A0 || D(G(z)))
  G, objective 2:     KL(A1 || D(G(z))) - KL(A0 || D(G(z)))
  G, objective 3:     KL(D(x) || D(G(z))) - KL(A0 || D(G(z)))       (both official scripts: relativisticG)

The anchors follow the official code (kam1107/RealnessGAN, train.py and training/loss.py). It takes each anchor as
the histogram, in n equal bins spanning the draws, of 1000 draws of a distribution (``realness.anchors``):
'normal_uniform' (the code's choice: A0 of N(0, 0.1), A1 of U(-1, 1)) or 'skewnorm' (its commented-out
alternative: A0 of a skew normal with shape -5, A1 with shape 5). It then shifts each anchor on the outcome
support linspace(negative_skew, positive_skew, n): A1 by positive_skew, A0 by negative_skew, clamping at the ends
and splitting each atom's mass linearly between the two nearest outcomes (C51's projection). The code redraws
the histograms every iteration; here each anchor is their mean over 1000 draws (a fixed seed), a constant.

The code's losses are cross-entropies, which differ from these KLs by the anchors' entropies: constants, so the
gradients are the same (objective 3's H(D(x)) does not depend on G's parameters). It takes log(softmax + 1e-16);
here log_softmax. Left out: the CelebA script's ``use_adaptive_reparam`` (D's outcomes drawn from a learned
Gaussian per outcome in training).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from clr_gan_jax.errors import require, require_number
from clr_gan_jax.objectives.adversarial import ADVERSARIAL, Adversarial

ANCHORS = ("normal_uniform", "skewnorm")
OBJECTIVES = (1, 2, 3)
DRAWS = 1000  # the official code's draws per histogram
REPEATS = 1000  # histograms averaged into one anchor


def _skew_normal(rng: np.random.Generator, shape: float, size: tuple[int, ...]) -> np.ndarray:
    """Draws of scipy's skewnorm(shape): delta |u0| + sqrt(1 - delta^2) u1 with delta = shape / sqrt(1 + shape^2)."""
    delta = shape / np.sqrt(1.0 + shape**2)
    u0, u1 = rng.standard_normal(size), rng.standard_normal(size)
    return delta * np.abs(u0) + np.sqrt(1.0 - delta**2) * u1


def histogram_anchor(draws: np.ndarray, num_outcomes: int) -> np.ndarray:
    """(repeats, draws) samples -> the mean of each row's np.histogram(row, num_outcomes) normalised to sum 1."""
    low, high = draws.min(axis=1, keepdims=True), draws.max(axis=1, keepdims=True)
    bins = np.minimum(((draws - low) / (high - low) * num_outcomes).astype(np.int64), num_outcomes - 1)
    return np.bincount(bins.ravel(), minlength=num_outcomes) / bins.size


def base_anchors(kind: str, num_outcomes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(A0, A1) before the skew shift: the mean histograms of the official code's draws."""
    rng = np.random.default_rng(seed)
    size = (REPEATS, DRAWS)
    if kind == "normal_uniform":
        fake, real = rng.normal(0.0, 0.1, size), rng.uniform(-1.0, 1.0, size)
    else:
        fake, real = _skew_normal(rng, -5.0, size), _skew_normal(rng, 5.0, size)
    return histogram_anchor(fake, num_outcomes), histogram_anchor(real, num_outcomes)


def shift(anchor: np.ndarray, skew: float, low: float, high: float) -> np.ndarray:
    """``anchor`` on linspace(low, high, n) moved by ``skew``: each atom clamped to [low, high] and its mass split
    linearly between the two nearest outcomes (the official CategoricalLoss's projection)."""
    n = anchor.shape[0]
    support = np.clip(np.linspace(low, high, n) + skew, low, high)
    position = np.round((support - low) / ((high - low) / (n - 1)), 9)
    lower = np.floor(position).astype(np.int64)
    upper_weight = position - lower
    shifted = np.zeros(n)
    np.add.at(shifted, lower, anchor * (1.0 - upper_weight))
    np.add.at(shifted, np.minimum(lower + 1, n - 1), anchor * upper_weight)
    return shifted


def kl(p: jax.Array, logits: jax.Array) -> jax.Array:
    """Batch mean of KL(p || softmax(logits)); p is (n,) or (N, n), 0 log 0 = 0."""
    p = jnp.broadcast_to(p, logits.shape)
    return (jax.scipy.special.xlogy(p, p) - p * jax.nn.log_softmax(logits, axis=-1)).sum(axis=-1).mean()


def realness_loss(anchor_fake: np.ndarray, anchor_real: np.ndarray, objective: int = 3) -> Adversarial:
    """The D loss and G's ``objective`` for the (already shifted) anchors A0 = ``anchor_fake``, A1 = ``anchor_real``."""
    a0, a1 = jnp.asarray(anchor_fake, jnp.float32), jnp.asarray(anchor_real, jnp.float32)

    def g(fake, real=None):
        if objective == 1:
            return -kl(a0, fake)
        if objective == 2:
            return kl(a1, fake) - kl(a0, fake)
        return kl(jax.nn.softmax(real, axis=-1), fake) - kl(a0, fake)

    return Adversarial(
        d=lambda real, fake: kl(a1, real) + kl(a0, fake), g=g, g_reads_real=objective == 3, outputs=a0.shape[0]
    )


@ADVERSARIAL.register("realness")
def build(config: ml_collections.ConfigDict) -> Adversarial:
    r, n = config.realness, config.model.d_outputs
    require(
        isinstance(n, int) and n >= 2,
        f"loss.adversarial='realness' needs model.d_outputs >= 2 outcomes (official: 51), got {n!r}",
    )
    require(r.anchors in ANCHORS, f"realness.anchors must be one of {ANCHORS}, got {r.anchors!r}")
    require(r.objective in OBJECTIVES, f"realness.objective must be one of {OBJECTIVES}, got {r.objective!r}")
    require_number("realness.negative_skew", r.negative_skew)
    require_number("realness.positive_skew", r.positive_skew, above=r.negative_skew)
    low, high = float(r.negative_skew), float(r.positive_skew)
    fake, real = base_anchors(r.anchors, n)
    return realness_loss(shift(fake, low, low, high), shift(real, high, low, high), r.objective)
