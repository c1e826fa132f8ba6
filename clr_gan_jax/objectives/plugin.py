"""Plugins: extra D heads and extra loss terms that any method can carry ("with CLR" = with the clr plugin).

A method hands its plugins what its main D and G losses computed, as a `DView` or a
`GView`, and adds the terms they return to those losses. Which network a term trains is
fixed inside the term by what it reads through ``jax.lax.stop_gradient``: the views give
fakes to D terms already stopped, and ``GView.discriminator`` is D with frozen parameters.
Plugins are built by name from the config section of the same name when its ``enabled``
field is true (``--config.clr.enabled=False`` removes CLR).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
import ml_collections

from clr_gan_jax.registry import Registry

Heads = tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class DView:
    """What D's main loss computed on one real batch and one batch of fakes (fakes without a gradient path to G)."""

    real: jax.Array
    fake: jax.Array
    real_out: dict[str, jax.Array]
    fake_out: dict[str, jax.Array]
    latents: dict[str, jax.Array]
    labels: jax.Array | None


@dataclasses.dataclass(frozen=True)
class GView:
    """What G's main loss computed, with G and a frozen D to call again.

    ``generator(latents)`` runs G in training mode with the parameters being trained (its
    mutable collections threaded by the method); ``discriminator(x, labels)`` runs D with
    its parameters treated as constants.
    """

    real: jax.Array
    labels: jax.Array | None
    fake: jax.Array
    fake_out: dict[str, jax.Array]
    latents: dict[str, jax.Array]
    generator: Callable[[dict], jax.Array]
    discriminator: Callable[[jax.Array, Any], dict]


class Plugin(Protocol):
    heads: Heads

    def check(self, d_outputs: dict[str, jax.ShapeDtypeStruct], latents: dict[str, jax.ShapeDtypeStruct]) -> None:
        """Raises UserError if D's outputs or the latents (shapes only) do not fit the plugin."""

    def d_terms(self, view: DView) -> dict[str, jax.Array]: ...

    def g_terms(self, view: GView) -> dict[str, jax.Array]: ...


PLUGINS = Registry("plugin")


def build_plugins(config: ml_collections.ConfigDict) -> tuple[Plugin, ...]:
    """The plugins whose config section (``config.<name>``) is enabled, in registration order."""
    return tuple(PLUGINS.get(name)(config) for name in PLUGINS if name in config and config[name].enabled)


def heads_of(plugins: tuple[Plugin, ...]) -> Heads:
    """The D heads all ``plugins`` need, each name once."""
    heads = {}
    for plugin in plugins:
        heads.update(dict(plugin.heads))
    return tuple(heads.items())
