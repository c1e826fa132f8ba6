"""ACGAN's auxiliary classifier as a plugin: a class head on D's features, trained on reals and fakes.

  D (aux_classifier.weight *):  CE(c(x), y) on reals with their labels  +  CE(c(G(z, y')), y') on fakes
  G (aux_classifier.weight *):  CE(c(G(z, y')), y') on fakes, D frozen

``c`` is a linear head of width num_classes on D's penultimate features (the zoo's cls_head, a
4x4 convolution beside the logit). D's fakes carry no gradient to G, and G's term reads D with
frozen parameters, so each term trains only its phase's network. The ACGAN paper puts both
cross-entropies in D's objective, as here; the zoo's D uses the reals' only.
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

    @property
    def heads(self) -> Heads:
        return ((HEAD, self.num_classes),)

    def check(self, d_outputs, latents):
        require("labels" in latents, "aux_classifier needs a conditional generator: set model.num_classes > 0")

    def d_terms(self, view: DView) -> dict[str, jax.Array]:
        real = cross_entropy(view.real_out[HEAD], view.labels)
        fake = cross_entropy(view.fake_out[HEAD], view.latents["labels"])
        return {"d_cls": self.weight * (real + fake)}

    def g_terms(self, view: GView) -> dict[str, jax.Array]:
        return {"g_cls": self.weight * cross_entropy(view.fake_out[HEAD], view.latents["labels"])}


@PLUGINS.register("aux_classifier")
def build(config: ml_collections.ConfigDict) -> AuxClassifier:
    require_number("aux_classifier.weight", config.aux_classifier.weight, at_least=0)
    require(
        isinstance(config.model.num_classes, int) and config.model.num_classes >= 2,
        f"aux_classifier needs model.num_classes >= 2, got {config.model.num_classes!r}",
    )
    return AuxClassifier(num_classes=config.model.num_classes, weight=float(config.aux_classifier.weight))
