"""AdaptiveMix (Liu et al., CVPR 2023) as a plugin: D's features of a mixture of two images must point the way of
the same mixture of their features, which shrinks the regions the training images take in D's feature space.

For a batch x (N images of one kind) with f(x) D's penultimate features (``features``), a random permutation pi
of the batch, one lam ~ Beta(alpha, alpha) per batch and noise e ~ N(0, noise_std^2) per feature:

  S(x) = -mean_i cos( f(lam x_i + (1 - lam) x_pi(i)),  stop_gradient(lam f(x_i) + (1 - lam) f(x_pi(i)) + e_i) )

  D (weight *):    S(reals) + S(fakes)       fakes without a gradient path to G
  G (g_weight *):  S(fakes), D frozen        the gradient reaches G through the mixed fakes

as the official code (WentianZhang-ML/AdaptiveMix, generation/training/loss.py and networks.py adaptive_mix: every
D call of its StyleGAN2 loss, weight 1 in D's and G's losses, alpha 1, noise_std 0.05 in its scripts). Its f is
D's 4x4 block output before the epilogue; here the method's ``features`` output (the dcgan D's flattened 4x4 map,
the same place; stylegan2's epilogue FC output). The mixtures are of the images as D sees them (after ADA's
augmentation, when on, which the official runs leave off). Left out: the official code also replaces D's logits in
the adversarial loss by head(mixed target) + head(f(mixture)); here the adversarial loss reads the images' own
logits.
"""

import dataclasses

import jax
import ml_collections

from clr_gan_jax.errors import require_number
from clr_gan_jax.objectives.glead import cosine_distance
from clr_gan_jax.objectives.plugin import PLUGINS, DView, GView, Heads


def shrinkage(discriminator, x: jax.Array, features: jax.Array, labels, pi, lam, noise) -> jax.Array:
    """S(x) for the draws (pi, lam, noise); ``features`` are f(x), ``discriminator(x, labels)`` D's outputs."""
    target = lam * features + (1.0 - lam) * features[pi] + noise
    out = discriminator(lam * x + (1.0 - lam) * x[pi], labels)["features"]
    return cosine_distance(out, jax.lax.stop_gradient(target)) - 1.0


@dataclasses.dataclass(frozen=True)
class AdaptiveMix:
    weight: float = 1.0
    g_weight: float = 1.0
    alpha: float = 1.0
    noise_std: float = 0.05
    heads: Heads = ()
    decoder = None  # no decoder in D
    codes = None  # no latent codes for G

    def check(self, d_outputs, latents):
        pass  # every architecture's D returns its features

    def draws(self, rng: jax.Array, n: int, feature_shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(pi, lam, e) for a batch of n: a permutation, lam ~ Beta(alpha, alpha), noise of ``feature_shape``."""
        perm_rng, lam_rng, noise_rng = jax.random.split(rng, 3)
        noise = self.noise_std * jax.random.normal(noise_rng, feature_shape)
        return jax.random.permutation(perm_rng, n), jax.random.beta(lam_rng, self.alpha, self.alpha), noise

    def term(self, discriminator, x: jax.Array, features: jax.Array, labels, rng: jax.Array) -> jax.Array:
        """S(x) above, given the batch's features f(x) (D is called once, on the mixtures, with x's labels)."""
        pi, lam, noise = self.draws(rng, x.shape[0], features.shape)
        return shrinkage(discriminator, x, features, labels, pi, lam, noise)

    def d_terms(self, view: DView) -> dict[str, jax.Array]:
        real_rng, fake_rng = jax.random.split(view.rng)
        real = self.term(view.discriminator, view.real, view.real_out["features"], view.labels, real_rng)
        fake = self.term(view.discriminator, view.fake, view.fake_out["features"], view.latents.get("labels"), fake_rng)
        return {"d_adaptivemix": self.weight * (real + fake)}

    def d_reg_terms(self, view: DView) -> dict[str, jax.Array]:
        return {}

    def g_terms(self, view: GView) -> dict[str, jax.Array]:
        if not self.g_weight:
            return {}
        fake = self.term(view.discriminator, view.fake, view.fake_out["features"], view.latents.get("labels"), view.rng)
        return {"g_adaptivemix": self.g_weight * fake}


@PLUGINS.register("adaptivemix")
def build(config: ml_collections.ConfigDict) -> AdaptiveMix:
    a = config.adaptivemix
    for name in ("weight", "g_weight", "noise_std"):
        require_number(f"adaptivemix.{name}", a[name], at_least=0)
    require_number("adaptivemix.alpha", a.alpha, above=0)
    return AdaptiveMix(
        weight=float(a.weight), g_weight=float(a.g_weight), alpha=float(a.alpha), noise_std=float(a.noise_std)
    )
