"""Optimizers by name (``optim.name``) and the projection that WGAN applies after every D update.

adam     Adam(lr, b1, b2, eps), as torch.optim.Adam
rmsprop  RMSprop(lr) as torch.optim.RMSprop: squared-gradient average with decay b2 (torch's
         alpha, 0.99), eps added outside the square root, no momentum
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from clr_gan_jax.errors import require_number
from clr_gan_jax.registry import Registry

OPTIMIZERS = Registry("optim.name")


@OPTIMIZERS.register("adam")
def _adam(lr: float, o: ml_collections.ConfigDict) -> optax.GradientTransformation:
    return optax.adam(lr, o.b1, o.b2, eps=o.eps)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(lr: float, o: ml_collections.ConfigDict) -> optax.GradientTransformation:
    return optax.rmsprop(lr, decay=o.b2, eps=o.eps, eps_in_sqrt=False)


def build(o: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
    """The optimizer ``o.name`` of config section ``o`` with learning rate ``lr``; checks the section."""
    factory = OPTIMIZERS.get(o.name)
    require_number("optim.b1", o.b1, at_least=0, below=1)
    require_number("optim.b2", o.b2, at_least=0, below=1)
    require_number("optim.eps", o.eps, above=0)
    return factory(lr, o)


def clip_parameters(limit: float) -> Callable:
    """params -> params with every value clipped to [-limit, limit] (WGAN's Lipschitz constraint)."""
    return lambda params: jax.tree.map(lambda p: jnp.clip(p, -limit, limit), params)
