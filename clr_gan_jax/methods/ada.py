"""ADA as every method applies it: what D is shown, and the adaptive p kept in ``TrainState.aux['ada']``.

Placement (StyleGAN2-ADA's training/loss.py): every image D sees is augmented, reals and fakes, in D's
and G's phases, each call with its own draw. Input-gradient penalties differentiate with respect to the
un-augmented images through the augmentation: R1 on the reals and, by the same rule, WGAN-GP on the
un-augmented interpolates (the penalised function is D after the augmentation, the one D's loss trains).
Plugins need no change: they call the D they are given, so CLR's phi is computed on augmented images while
its targets (z for restoration, x for reconstruction) stay as they are.

Adaptive p: every D evaluation on augmented reals adds its logits' signs to the state (the d phase, and
StyleGAN2's d_reg phase, as the official code reports both); every ``interval`` steps p moves by
``images_per_step * interval / (kimg * 1000)`` towards the target, as `augment.controller` does. Inside the
jitted step the logits are the global batch, so the statistic covers every device. ``target = 0`` keeps p
fixed (at ``augment.p`` in a new run, at the checkpoint's p on resume). With ``pipe = ''`` nothing of this
is in the graph and the state has no 'ada' entry.
"""

import dataclasses
from collections.abc import Callable

import jax
import ml_collections

from clr_gan_jax.augment import PIPES, controller, resolve
from clr_gan_jax.augment.pipe import augment
from clr_gan_jax.errors import require, require_number
from clr_gan_jax.methods.base import Apply
from clr_gan_jax.state import TrainState

# The augmentation draws from its own stream of each phase's key, so switching ADA on changes no other draw.
_AUGMENT_STREAM = 0xADA


class AugmentedDiscriminator:
    """D behind the augmentation; the same calls as `methods.base.Apply` (``d(images, labels)``,
    ``d.with_input_grad(images, labels)``), each call augmenting with a key of its own."""

    def __init__(self, d: Apply, p: jax.Array, rng: jax.Array, pipe: str):
        self._d, self._p, self._rng, self._pipe = d, p, rng, pipe
        self._calls = 0

    def _transform(self) -> Callable[[jax.Array], jax.Array]:
        key = jax.random.fold_in(self._rng, self._calls)
        self._calls += 1
        return lambda images: augment(images, self._p, key, self._pipe)

    def __call__(self, images: jax.Array, labels) -> dict:
        return self._d(self._transform()(images), labels)

    def with_input_grad(self, images: jax.Array, labels) -> tuple[dict, jax.Array]:
        """(D's outputs on the augmented images, d sum(logits) / d images): the gradient w.r.t. the un-augmented."""
        return self._d.with_input_grad(images, labels, transform=self._transform())


Shown = Apply | AugmentedDiscriminator  # the D a phase shows its images to


@dataclasses.dataclass(frozen=True)
class Ada:
    """The ``augment`` config section as plain values; ``pipe = ''`` is no augmentation."""

    pipe: str = ""
    p: float = 0.0
    target: float = 0.6
    interval: int = 4
    kimg: float = 500.0
    images_per_step: int = 64

    @property
    def enabled(self) -> bool:
        return bool(self.pipe)

    @property
    def adaptive(self) -> bool:
        return self.enabled and self.target > 0

    def init_aux(self) -> dict:
        return {"ada": controller.init(self.p)} if self.enabled else {}

    def discriminator(self, d: Apply, aux: dict, rng: jax.Array) -> Shown:
        """What a phase shows its images to: ``d`` itself without ADA, else D behind the augmentation at aux's p.

        ``rng`` is the phase's key; the augmentation folds its own stream out of it.
        """
        if not self.enabled:
            return d
        return AugmentedDiscriminator(d, aux["ada"].p, jax.random.fold_in(rng, _AUGMENT_STREAM), self.pipe)

    def observe(self, aux: dict, real_logits: jax.Array) -> dict:
        """The aux entries to return from a phase that ran D on augmented reals: their signs added ({} if fixed)."""
        return {"ada": controller.accumulate(aux["ada"], real_logits)} if self.adaptive else {}

    def metrics(self, aux: dict) -> dict:
        """``ada_p``: the probability this step augments with ({} without ADA)."""
        return {"ada_p": aux["ada"].p} if self.enabled else {}

    def end_of_step(self, state: TrainState) -> TrainState:
        """Moves p after every ``interval``-th step (counting from 1, as the official loop), if adaptive."""
        if not self.adaptive:
            return state
        ada = controller.adjust(
            state.aux["ada"],
            target=self.target,
            batch_size=self.images_per_step,
            interval=self.interval,
            ada_kimg=self.kimg,
            due=(state.step + 1) % self.interval == 0,
        )
        return state.replace(aux={**state.aux, "ada": ada})


def build(augment: ml_collections.ConfigDict, images_per_step: int, example_shape: tuple[int, ...]) -> Ada:
    """Validates the ``augment`` config section (one-line UserErrors) against the data's example shape."""
    pipe = augment.pipe
    require(
        pipe == "" or pipe in PIPES,
        f"augment.pipe: unknown name {pipe!r}; known: {', '.join(PIPES.names())} ('' for no augmentation)",
    )
    require_number("augment.p", augment.p, at_least=0)
    require_number("augment.target", augment.target, at_least=0)
    require(augment.target <= 1, f"augment.target is a mean sign, at most 1 (0: fixed p), got {augment.target}")
    require_number("augment.interval", augment.interval, at_least=1, integer=True)
    require_number("augment.kimg", augment.kimg, above=0)
    if pipe:
        require(
            len(example_shape) == 3,
            f"augment.pipe={pipe!r} augments images, but the data are {example_shape}-shaped; use augment.pipe=''",
        )
        require(
            not resolve(pipe).has_color or example_shape[-1] in (1, 3),
            f"augment.pipe={pipe!r} has colour transforms, which need 1 or 3 channels, not {example_shape[-1]}; "
            "use a pipe without colour (blit, geom, bg, filter, noise, cutout)",
        )
        require(
            augment.target > 0 or augment.p > 0,
            f"augment.pipe={pipe!r} with augment.target=0 (fixed p) and augment.p=0 augments nothing; "
            "set augment.p > 0 or augment.target > 0, or augment.pipe=''",
        )
    return Ada(
        pipe=pipe,
        p=float(augment.p),
        target=float(augment.target),
        interval=augment.interval,
        kimg=float(augment.kimg),
        images_per_step=images_per_step,
    )
