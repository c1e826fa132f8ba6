"""What the methods optimise: adversarial losses by name, gradient penalties, and plugins (CLR, ACGAN's classifier)."""

from clr_gan_jax.objectives import aux_classifier, clr  # noqa: F401 -- register the plugins
from clr_gan_jax.objectives.adversarial import ADVERSARIAL, Adversarial
from clr_gan_jax.objectives.plugin import PLUGINS, DView, GView, Plugin, build_plugins, heads_of

__all__ = ["ADVERSARIAL", "PLUGINS", "Adversarial", "DView", "GView", "Plugin", "build_plugins", "heads_of"]
