"""What the methods optimise: adversarial losses by name, gradient penalties, and plugins (CLR first)."""

from clr_gan_jax.objectives import clr  # noqa: F401 -- registers the plugin
from clr_gan_jax.objectives.adversarial import ADVERSARIAL, Adversarial
from clr_gan_jax.objectives.plugin import PLUGINS, DView, GView, Plugin, build_plugins, heads_of

__all__ = ["ADVERSARIAL", "PLUGINS", "Adversarial", "DView", "GView", "Plugin", "build_plugins", "heads_of"]
