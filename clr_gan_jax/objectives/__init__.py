"""What the methods optimise: adversarial losses by name, gradient penalties, and plugins (CLR, ACGAN's classifier,
GLeaD, InfoGAN)."""

from clr_gan_jax.objectives import aux_classifier, clr, glead, infogan  # noqa: F401 -- register the plugins
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
]
