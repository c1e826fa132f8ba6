"""InfoGAN (Chen et al. 2016) as a plugin: latent codes that G reads beside z, and a Q head on D that must read them
back.

  codes c = [one_hot(k), u],  k ~ U{0..categories-1},  u ~ N(0, I_continuous)   (the zoo's draws)
  G's input: [z, c] (`methods.gan`)
  MI term: cat_weight * CE(q_cat(x), k) + cont_weight * MSE(q_cont(x), u),  x = G(z, c)

``q_cat`` and ``q_cont`` are linear heads on D's penultimate features (the zoo's c_disc_head and
c_cont_head, 4x4 convolutions beside the logit), so Q shares D's trunk. The MSE is the log-likelihood
of a unit-variance Gaussian Q up to constants, as in the zoo. The zoo runs the MI term as a third step
after G's, updating G and all of D (trunk and Q heads; the logit head gets no gradient) with it; here
D's loss holds it on D's fakes (G frozen: it trains D's trunk and the Q heads) and G's loss on G's fakes
(D frozen: it trains G), so the same parameters follow the same objective without an extra pass.

The codes also give CLR's reconstruction its codes for a real image: Q's reading of it,
one_hot(argmax q_cat(x)) and q_cont(x) (`infer`).
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from clr_gan_jax.errors import require, require_number
from clr_gan_jax.latents import Row
from clr_gan_jax.objectives.aux_classifier import cross_entropy
from clr_gan_jax.objectives.plugin import PLUGINS, DView, GView, Heads

CATEGORICAL, CONTINUOUS = "q_cat", "q_cont"


@dataclasses.dataclass(frozen=True)
class InfoCodes:
    """One categorical code of ``categories`` values (one-hot, first) and ``continuous`` N(0, 1) codes."""

    categories: int = 10
    continuous: int = 2

    @property
    def width(self) -> int:
        return self.categories + self.continuous

    def sample(self, rng: jax.Array, n: int) -> jax.Array:
        cat_rng, cont_rng = jax.random.split(rng)
        k = jax.random.randint(cat_rng, (n,), 0, max(self.categories, 1))
        u = jax.random.normal(cont_rng, (n, self.continuous), jnp.float32)
        return jnp.concatenate([jax.nn.one_hot(k, self.categories, dtype=jnp.float32), u], axis=-1)

    def infer(self, d_outputs: dict) -> jax.Array:
        parts = []
        if self.categories:
            parts.append(jax.nn.one_hot(jnp.argmax(d_outputs[CATEGORICAL], -1), self.categories, dtype=jnp.float32))
        if self.continuous:
            parts.append(d_outputs[CONTINUOUS])
        return jnp.concatenate(parts, axis=-1)

    def traversal(self, columns: int, sweep: jax.Array) -> list[Row]:
        """One row per categorical value, then one per value of ``sweep`` for each continuous code; the columns
        are ``columns`` base latents, the same in every row."""
        base = jnp.arange(columns)
        rows = [
            Row("codes", 0, jnp.tile(jax.nn.one_hot(k, self.categories), (columns, 1)), base)
            for k in range(self.categories)
        ]
        for i in range(self.continuous):
            rows += [Row("codes", self.categories + i, jnp.full((columns, 1), value), base) for value in sweep]
        return rows


@dataclasses.dataclass(frozen=True)
class InfoGAN:
    codes: InfoCodes = InfoCodes()
    cat_weight: float = 1.0
    cont_weight: float = 1.0
    decoder = None  # no decoder in D

    @property
    def heads(self) -> Heads:
        widths = ((CATEGORICAL, self.codes.categories), (CONTINUOUS, self.codes.continuous))
        return tuple((name, width) for name, width in widths if width)

    def check(self, d_outputs, latents):
        require("codes" in latents, "infogan needs method='gan' (the method that draws latent codes for G)")

    def mutual_information(self, prefix: str, outputs: dict, codes: jax.Array) -> dict[str, jax.Array]:
        """The MI term's parts, named ``<prefix>_info_cat`` and ``<prefix>_info_cont``, weights applied."""
        terms = {}
        if self.codes.categories:
            k = jnp.argmax(codes[:, : self.codes.categories], -1)
            terms[f"{prefix}_info_cat"] = self.cat_weight * cross_entropy(outputs[CATEGORICAL], k)
        if self.codes.continuous:
            u = codes[:, self.codes.categories :]
            terms[f"{prefix}_info_cont"] = self.cont_weight * jnp.square(outputs[CONTINUOUS] - u).mean()
        return terms

    def d_terms(self, view: DView) -> dict[str, jax.Array]:
        """On D's fakes, which carry no gradient to G: trains D's trunk and the Q heads."""
        return self.mutual_information("d", view.fake_out, view.latents["codes"])

    def d_reg_terms(self, view: DView) -> dict[str, jax.Array]:
        return {}

    def g_terms(self, view: GView) -> dict[str, jax.Array]:
        """On G's fakes through the frozen D: trains G."""
        return self.mutual_information("g", view.fake_out, view.latents["codes"])


@PLUGINS.register("infogan")
def build(config: ml_collections.ConfigDict) -> InfoGAN:
    c = config.infogan
    for name in ("categories", "continuous"):
        require_number(f"infogan.{name}", c[name], at_least=0, integer=True)
    require(c.categories != 1, "infogan.categories must be 0 (none) or >= 2: one value carries no information")
    require(c.categories + c.continuous > 0, "infogan needs infogan.categories >= 2 or infogan.continuous >= 1")
    for name in ("cat_weight", "cont_weight"):
        require_number(f"infogan.{name}", c[name], at_least=0)
    return InfoGAN(InfoCodes(c.categories, c.continuous), float(c.cat_weight), float(c.cont_weight))
