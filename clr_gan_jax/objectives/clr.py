"""CLR-GAN's two consistency terms as a plugin: D's phi(x) must restore z; G must rebuild x from phi(x).

  latent restoration (D only):  w_clr * dist(z, phi(G(z)))   on fakes, G(z) a constant for D
  reconstruction     (G only):  w_rec * dist(x, G(phi(x)))   on reals, phi(x) a constant for G

``dist`` is the mean squared error (the official code, w_clr 5 and w_rec 0.5) or the mean
absolute error (the paper's L1). ``phi`` is a linear head of width z_dim on D's penultimate
features (``clr.phi='head'``, the default for the zoo's networks) or those features
themselves (``'features'``: the official StyleGAN2 code, whose epilogue FC output is 512 = z_dim
wide). For a conditional G, the reconstruction passes the real labels with phi(x).

CLR restores z only. G's other inputs are restored elsewhere: a plugin's latent codes by that plugin
(InfoGAN's mutual-information term is a restoration of its codes by the Q head), so the reconstruction
feeds G phi(x) with the codes D's heads infer for x (``GView.infer_codes``). EigenGAN's per-layer
coordinates are part of z (`models.eigengan`), so CLR restores them with the noise.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from clr_gan_jax.errors import require, require_number
from clr_gan_jax.objectives.plugin import PLUGINS, DView, GView, Heads
from clr_gan_jax.registry import Registry

DISTANCES = Registry("clr.distance")
DISTANCES.register("mse")(lambda a, b: jnp.square(a - b).mean())
DISTANCES.register("l1")(lambda a, b: jnp.abs(a - b).mean())
PHI_SOURCES = ("head", "features")


@dataclasses.dataclass(frozen=True)
class CLR:
    w_clr: float = 5.0
    w_rec: float = 0.5
    distance: str = "mse"
    phi: str = "head"
    z_dim: int = 100
    decoder = None  # no decoder in D
    codes = None  # no latent codes for G

    @property
    def heads(self) -> Heads:
        return (("phi", self.z_dim),) if self.phi == "head" else ()

    def phi_of(self, outputs: dict) -> jax.Array:
        return outputs["phi" if self.phi == "head" else "features"]

    def dist(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return DISTANCES.get(self.distance)(a, b)

    def check(self, d_outputs, latents):
        width, z_width = self.phi_of(d_outputs).shape[-1], latents["z"].shape[-1]
        require(
            width == z_width,
            f"clr.phi={self.phi!r}: D's {'phi head' if self.phi == 'head' else 'penultimate features'} are "
            f"{width} wide but z is {z_width} wide; use clr.phi='head' or a model whose features match model.z_dim",
        )

    def d_terms(self, view: DView) -> dict[str, jax.Array]:
        """Latent restoration; the view's fakes carry no gradient to G, so this trains D only."""
        return {"d_clr": self.w_clr * self.dist(view.latents["z"], self.phi_of(view.fake_out))}

    def d_reg_terms(self, view: DView) -> dict[str, jax.Array]:
        return {}

    def g_terms(self, view: GView) -> dict[str, jax.Array]:
        """Reconstruction of the reals from D's code of them; D is frozen and phi(x) a constant: trains G only."""
        outputs = view.discriminator(view.real, view.labels)
        latents = jax.lax.stop_gradient({"z": self.phi_of(outputs), **view.infer_codes(outputs)})
        reconstructed = view.generator({**latents, "labels": view.labels})
        return {"g_rec": self.w_rec * self.dist(view.real, reconstructed)}


@PLUGINS.register("clr")
def build(config: ml_collections.ConfigDict) -> CLR:
    c = config.clr
    DISTANCES.get(c.distance)
    require(c.phi in PHI_SOURCES, f"clr.phi must be one of {PHI_SOURCES}, got {c.phi!r}")
    for name in ("w_clr", "w_rec"):
        require_number(f"clr.{name}", c[name], at_least=0)
    return CLR(w_clr=float(c.w_clr), w_rec=float(c.w_rec), distance=c.distance, phi=c.phi, z_dim=config.model.z_dim)
