"""What the methods optimise: adversarial losses by name (RealnessGAN's among them), gradient penalties, and
plugins (CLR, ACGAN's classifier, GLeaD, AdaptiveMix, InfoGAN)."""

from clr_gan_jax.objectives import adaptivemix, aux_classifier, clr, glead, infogan, realness  # noqa: F401 -- register them
from clr_gan_jax.objectives.adversarial import ADVERSARIAL, Adversarial
from clr_gan_jax.objectives.plugin import (
    PLUGINS,
    Decoder,
    DView,
    GView,
    LatentCodes,
    Plugin,
    build_plugins,
    codes_of,
    decoder_of,
    heads_of,
    plugin_names,
    plugin_rng,
)

__all__ = [
    "ADVERSARIAL",
    "PLUGINS",
    "Adversarial",
    "DView",
    "Decoder",
    "GView",
    "LatentCodes",
    "Plugin",
    "build_plugins",
    "codes_of",
    "decoder_of",
    "heads_of",
    "plugin_names",
    "plugin_rng",
]
