"""GLeaD (Bai et al., CVPR 2023) as a plugin: D's features must let G, used as a frozen decoder, rebuild D's input.

D's decoder (``decoder_res``, `models.stylegan2.discriminator.Decoder`) gives for each input an image, a
feature map like G's block output at ``res_g`` and one w. ``G_above(x)`` runs the live G's synthesis blocks
above res_g from that feature map and image (bilinearly resized to res_g without antialiasing when
decoder_res differs) with the w repeated 2 log2(R / res_g) + 1 times, random noise, no mapping and no mixing.
D's terms, the official ``loss_glead.py``:

  real reconstruction:  real_weight * real_distance(x, G_above(x))              lpips (official) | mse
  fake, fake_target='gfeat' (GGDR's feature loss; the default scripts' "GLeaD + GGDR"):
                        fake_weight * fake_distance(feature head(G(z)), G's res_g block output for G(z))
                                                                                 cosine (official) | mse
  fake, fake_target='gfwimage' (pure GLeaD):
                        fake_weight * fake_distance(G(z), G_above(G(z)))        lpips (official) | mse

cosine = 1 - mean over pixels and samples of the cosine similarity over channels (eps 1e-8); lpips is the batch
mean of LPIPS v0.1 AlexNet (`metrics.lpips`). G's parameters are constants in every term (and the fakes and
their G features carry no gradient), so GLeaD trains D only. ``in_dreg`` keeps the official quirk: the real
reconstruction term is also added in D's lazy regularisation phase, there scaled by its interval (16) like R1.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from clr_gan_jax.errors import UserError, require, require_number
from clr_gan_jax.metrics import lpips
from clr_gan_jax.objectives.plugin import PLUGINS, Decoder, DView, GView, Heads

REAL_DISTANCES = ("lpips", "mse")
FAKE_DISTANCES = {"gfeat": ("cosine", "mse"), "gfwimage": ("lpips", "mse")}
COSINE_EPS = 1e-8


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.square(a - b).mean()


def cosine_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """1 - mean over (N, H, W) of the cosine similarity over channels, each norm clamped at eps (torch's)."""

    def unit(x):
        return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), COSINE_EPS)

    return 1.0 - jnp.sum(unit(a) * unit(b), axis=-1).mean()


def resize(x: jax.Array, resolution: int) -> jax.Array:
    """NHWC x to resolution^2: torch's bilinear interpolate with align_corners=False, no antialiasing (a 2x
    reduction is the 2x2 mean)."""
    if x.shape[1] == resolution:
        return x
    return jax.image.resize(x, (x.shape[0], resolution, resolution, x.shape[-1]), "bilinear", antialias=False)


@dataclasses.dataclass(frozen=True)
class GLeaD:
    res_g: int = 64
    decoder_res: int = 64
    w_dim: int = 512
    real_weight: float = 10.0
    real_distance: str = "lpips"
    fake_target: str = "gfeat"
    fake_weight: float = 10.0
    fake_distance: str = "cosine"
    in_dreg: bool = True
    lpips_variables: dict | None = dataclasses.field(default=None, compare=False, repr=False)
    heads: Heads = ()
    codes = None  # no latent codes for G

    @property
    def decoder(self) -> Decoder:
        return Decoder(self.decoder_res, self.res_g, self.w_dim)

    def distance(self, name: str, a: jax.Array, b: jax.Array) -> jax.Array:
        if name == "lpips":
            return lpips.lpips_distance(self.lpips_variables, a, b).mean()
        return cosine_distance(a, b) if name == "cosine" else mse(a, b)

    def check(self, d_outputs, latents):
        resolution = 2 * max(d_outputs["blocks"])
        uses_lpips = "lpips" in (self.real_distance, self.fake_distance)
        require(
            not uses_lpips or resolution >= lpips.MIN_SIZE,
            f"glead: LPIPS needs images of at least {lpips.MIN_SIZE} px, got {resolution}; use the mse distances",
        )

    def decode(self, view: DView, out: dict) -> jax.Array:
        """G_above of D's heads ``out``: the image G's upper blocks render from them."""
        w_amount = 2 * round(np.log2(view.real.shape[1] // self.res_g)) + 1
        ws = jnp.repeat(out["glead_w"][:, None], w_amount, axis=1)
        return view.decode(ws, resize(out["glead_feature"], self.res_g), resize(out["glead_image"], self.res_g))

    def real_term(self, view: DView) -> jax.Array:
        return self.real_weight * self.distance(self.real_distance, self.decode(view, view.real_out), view.real)

    def d_terms(self, view: DView) -> dict[str, jax.Array]:
        if self.fake_target == "gfeat":
            source = resize(view.fake_out["glead_feature"], self.res_g)
            target = jax.lax.stop_gradient(view.fake_g_feature)
        else:
            source, target = self.decode(view, view.fake_out), jax.lax.stop_gradient(view.fake)
        return {
            "d_glead_real": self.real_term(view),
            "d_glead_fake": self.fake_weight * self.distance(self.fake_distance, source, target),
        }

    def d_reg_terms(self, view: DView) -> dict[str, jax.Array]:
        """The official code's real reconstruction in the Dreg phase too (``in_dreg``)."""
        return {"d_reg_glead_real": self.real_term(view)} if self.in_dreg else {}

    def g_terms(self, view: GView) -> dict[str, jax.Array]:
        return {}


def _power_of_two(name: str, value, at_least: int) -> None:
    require(
        isinstance(value, int) and value >= at_least and value & (value - 1) == 0,
        f"glead.{name} must be a power of two >= {at_least}, got {value!r}",
    )


@PLUGINS.register("glead")
def build(config: ml_collections.ConfigDict) -> GLeaD:
    c = config.glead
    _power_of_two("res_g", c.res_g, 4)
    _power_of_two("decoder_res", c.decoder_res, 8)
    require(
        c.real_distance in REAL_DISTANCES,
        f"glead.real_distance must be one of {REAL_DISTANCES}, got {c.real_distance!r}",
    )
    require(
        c.fake_target in FAKE_DISTANCES,
        f"glead.fake_target must be one of {tuple(FAKE_DISTANCES)}, got {c.fake_target!r}",
    )
    allowed = FAKE_DISTANCES[c.fake_target]
    require(
        c.fake_distance in allowed,
        f"glead.fake_distance must be one of {allowed} for fake_target={c.fake_target!r}, got {c.fake_distance!r}",
    )
    for name in ("real_weight", "fake_weight"):
        require_number(f"glead.{name}", c[name], at_least=0)
    lpips_variables = None
    if "lpips" in (c.real_distance, c.fake_distance):
        if not c.lpips_weights:
            raise UserError(f"glead: the lpips distance needs glead.lpips_weights, an .npz: {lpips.HOW_TO_GET}")
        lpips_variables = lpips.load_lpips(c.lpips_weights)
    return GLeaD(
        res_g=c.res_g,
        decoder_res=c.decoder_res,
        w_dim=config.model.w_dim,
        real_weight=float(c.real_weight),
        real_distance=c.real_distance,
        fake_target=c.fake_target,
        fake_weight=float(c.fake_weight),
        fake_distance=c.fake_distance,
        in_dreg=c.in_dreg,
        lpips_variables=lpips_variables,
    )
