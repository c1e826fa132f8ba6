"""ACGAN's auxiliary classifier as a plugin: a class head on D's features, trained on reals and fakes.

  D (aux_classifier.weight *):  CE(c(x), y) on reals with their labels  [+ CE(c(G(z, y')), y') on fakes]
  G (aux_classifier.weight *):  CE(c(G(z, y')), y') on fakes, D frozen

``c`` is a linear head of width num_classes on D's penultimate features (the zoo's cls_head, a
4x4 convolution beside the logit). D's fakes carry no gradient to G, and G's term reads D with
frozen parameters, so each term trains only its phase's network.

D's loss holds the reals' cross-entropy only, as the zoo's; ``aux_classifier.fakes_in_d`` adds the
fakes' too, as the ACGAN paper's L_C. That variant lets D and G agree on a code of their own: on the
digits (configs/digits_dcgan_clr.py:acgan_clr, 2000 steps) the shipped digits classifier named the
class asked of the EMA generator for 11% of its samples (chance; D's head: 39-100% per class), the
grid rows were not classes and intra_digits_fd was 202.5; with the reals' cross-entropy only, 58%,
rows of one digit each, and 63.0. A D trained on the reals' labels cannot learn a code they lack.
"""

import dataclasses

import jax
import ml_collections
import optax

from clr_gan_jax.errors import require, require_number
from clr_gan_jax.objectives.plugin import PLUGINS, DView, GView, Heads

HEAD = "class_logits"


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@dataclasses.dataclass(frozen=True)
class AuxClassifier:
    num_classes: int
    weight: float = 1.0
    fakes_in_d: bool = False
    decoder = None  # no decoder in D
    codes = None  # no latent codes for G

    @property
    def heads(self) -> Heads:
        return ((HEAD, self.num_classes),)

    def check(self, d_outputs, latents):
        require("labels" in latents, "aux_classifier needs a conditional generator: set model.num_classes > 0")

    def d_terms(self, view: DView) -> dict[str, jax.Array]:
        loss = cross_entropy(view.real_out[HEAD], view.labels)
        if self.fakes_in_d:
            loss = loss + cross_entropy(view.fake_out[HEAD], view.latents["labels"])
        return {"d_cls": self.weight * loss}

    def d_reg_terms(self, view: DView) -> dict[str, jax.Array]:
        return {}

    def g_terms(self, view: GView) -> dict[str, jax.Array]:
        return {"g_cls": self.weight * cross_entropy(view.fake_out[HEAD], view.latents["labels"])}


@PLUGINS.register("aux_classifier")
def build(config: ml_collections.ConfigDict) -> AuxClassifier:
    a = config.aux_classifier
    require_number("aux_classifier.weight", a.weight, at_least=0)
    require(isinstance(a.fakes_in_d, bool), f"aux_classifier.fakes_in_d must be True or False, got {a.fakes_in_d!r}")
    require(
        isinstance(config.model.num_classes, int) and config.model.num_classes >= 2,
        f"aux_classifier needs model.num_classes >= 2, got {config.model.num_classes!r}",
    )
    return AuxClassifier(num_classes=config.model.num_classes, weight=float(a.weight), fakes_in_d=a.fakes_in_d)
