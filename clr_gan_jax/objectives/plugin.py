"""Plugins: extra D heads and extra loss terms that any method can carry ("with CLR" = with the clr plugin).

A method hands its plugins what its main D and G losses computed, as a `DView` or a
`GView`, and adds the terms they return to those losses. Which network a term trains is
fixed inside the term by what it reads through ``jax.lax.stop_gradient``: the views give
fakes to D terms already stopped, and ``GView.discriminator`` is D with frozen parameters.
Plugins are built by name from the config section of the same name when its ``enabled``
field is true (``--config.clr.enabled=False`` removes CLR). A plugin that sets ``decoder`` (GLeaD)
gets GLeaD's decoder in D, G's block output at the decoder's feature resolution for the fakes, and
G's upper synthesis blocks as a frozen decoder (``DView.decode``); only the stylegan2 method provides these.
A plugin that draws randomness (AdaptiveMix) takes it from the view's ``rng``, a stream of the phase's key that no
other draw uses (`plugin_rng`).
A plugin that sets ``codes`` (InfoGAN) adds latent codes to G's input: the gan method draws them into
``latents['codes']`` and G reads [z, codes] (`LatentCodes`).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import ml_collections

from clr_gan_jax.errors import require
from clr_gan_jax.registry import Registry

Heads = tuple[tuple[str, int], ...]


class Decoder(NamedTuple):
    """GLeaD's decoder in D: its output ``resolution``, the resolution of G's block feature its feature head
    predicts, and the width of its w head."""

    resolution: int
    feature_resolution: int
    w_dim: int


class LatentCodes(Protocol):
    """Codes a plugin adds to G's input, (N, width) floats concatenated to z."""

    width: int

    def sample(self, rng: jax.Array, n: int) -> jax.Array: ...

    def infer(self, d_outputs: dict[str, jax.Array]) -> jax.Array:
        """The codes D's heads read off the images it saw (CLR rebuilds a real from phi(x) and these)."""

    def traversal(self, columns: int, sweep: jax.Array) -> list:
        """``--mode=traverse``'s rows (`latents.Row`) for these codes."""


@dataclasses.dataclass(frozen=True)
class DView:
    """What D's main loss computed on one real batch and one batch of fakes (fakes without a gradient path to G).

    In D's regularisation phase (`Plugin.d_reg_terms`) there are no fakes: ``fake``, ``fake_out`` are None and
    ``latents`` empty. With a plugin's ``decoder``: ``fake_g_feature`` is G's block output at the decoder's
    feature resolution for the fakes (no gradient path to G either), and ``decode(ws, feature_map, image)``
    runs G's synthesis blocks above the feature map's resolution in training mode (random noise) with G's
    parameters as constants. ``discriminator(x, labels)`` runs D again, with the parameters being trained.
    """

    real: jax.Array
    fake: jax.Array | None
    real_out: dict[str, jax.Array]
    fake_out: dict[str, jax.Array] | None
    latents: dict[str, jax.Array]
    labels: jax.Array | None
    fake_g_feature: jax.Array | None = None
    decode: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None = None
    discriminator: Callable[[jax.Array, Any], dict] | None = None
    rng: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class GView:
    """What G's main loss computed, with G and a frozen D to call again.

    ``generator(latents)`` runs G in training mode with the parameters being trained (its
    mutable collections threaded by the method); ``discriminator(x, labels)`` runs D with
    its parameters treated as constants. ``infer_codes(d_outputs)`` gives the latents besides z and labels
    that G needs for images D has seen (``{'codes': ...}`` with a plugin's `LatentCodes`, else empty).
    """

    real: jax.Array
    labels: jax.Array | None
    fake: jax.Array
    fake_out: dict[str, jax.Array]
    latents: dict[str, jax.Array]
    generator: Callable[[dict], jax.Array]
    discriminator: Callable[[jax.Array, Any], dict]
    rng: jax.Array | None = None
    infer_codes: Callable[[dict], dict] = lambda d_outputs: {}


class Plugin(Protocol):
    heads: Heads
    decoder: Decoder | None
    codes: LatentCodes | None

    def check(self, d_outputs: dict[str, jax.ShapeDtypeStruct], latents: dict[str, jax.ShapeDtypeStruct]) -> None:
        """Raises UserError if D's outputs or the latents (shapes only) do not fit the plugin."""

    def d_terms(self, view: DView) -> dict[str, jax.Array]: ...

    def d_reg_terms(self, view: DView) -> dict[str, jax.Array]:
        """Terms added to D's lazy regularisation loss (before its scaling by the interval), on the reals only."""

    def g_terms(self, view: GView) -> dict[str, jax.Array]: ...


PLUGINS = Registry("plugin")
_PLUGIN_STREAM = 0x9106  # folded into a phase's key: the plugins' draws change no other draw


def plugin_rng(phase_rng: jax.Array) -> jax.Array:
    """The key of a phase's plugin views, its own stream of the phase's key."""
    return jax.random.fold_in(phase_rng, _PLUGIN_STREAM)


def plugin_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The names of the plugins whose config section (``config.<name>``) is enabled, in registration order."""
    return tuple(name for name in PLUGINS if name in config and config[name].enabled)


def build_plugins(config: ml_collections.ConfigDict) -> tuple[Plugin, ...]:
    """The plugins of `plugin_names`, built from the config."""
    return tuple(PLUGINS.get(name)(config) for name in plugin_names(config))


def decoder_of(plugins: tuple[Plugin, ...]) -> Decoder | None:
    """The decoder the plugins ask D for (at most one kind), or None."""
    decoders = {plugin.decoder for plugin in plugins if plugin.decoder is not None}
    require(len(decoders) <= 1, f"the plugins ask for different decoders in D: {sorted(decoders)}")
    return decoders.pop() if decoders else None


def codes_of(plugins: tuple[Plugin, ...]) -> LatentCodes | None:
    """The latent codes a plugin adds to G's input (at most one plugin may), or None."""
    codes = [plugin.codes for plugin in plugins if plugin.codes is not None]
    require(len(codes) <= 1, "at most one plugin may add latent codes to G's input")
    return codes[0] if codes else None


def heads_of(plugins: tuple[Plugin, ...]) -> Heads:
    """The D heads all ``plugins`` need, each name once."""
    heads = {}
    for plugin in plugins:
        heads.update(dict(plugin.heads))
    return tuple(heads.items())
