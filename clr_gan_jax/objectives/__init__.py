"""What the methods optimise: adversarial losses by name, gradient penalties, and plugins (CLR, ACGAN's classifier,
GLeaD)."""

from clr_gan_jax.objectives import aux_classifier, clr, glead  # noqa: F401 -- register the plugins
from clr_gan_jax.objectives.adversarial import ADVERSARIAL, Adversarial
from clr_gan_jax.objectives.plugin import (
    PLUGINS,
    Decoder,
    DView,
    GView,
    Plugin,
    build_plugins,
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
    "Plugin",
    "build_plugins",
    "decoder_of",
    "heads_of",
    "plugin_names",
]
