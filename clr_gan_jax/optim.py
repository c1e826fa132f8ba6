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


def _check_moments(o: ml_collections.ConfigDict):
    require_number("optim.b1", o.b1, at_least=0, below=1)
    require_number("optim.b2", o.b2, at_least=0, below=1)
    require_number("optim.eps", o.eps, above=0)


def build(o: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
    """The optimizer ``o.name`` of config section ``o`` with learning rate ``lr``; checks the section."""
    factory = OPTIMIZERS.get(o.name)
    _check_moments(o)
    return factory(lr, o)


def clip_parameters(limit: float) -> Callable:
    """params -> params with every value clipped to [-limit, limit] (WGAN's Lipschitz constraint)."""
    return lambda params: jax.tree.map(lambda p: jnp.clip(p, -limit, limit), params)


def sanitize_gradients() -> optax.GradientTransformation:
    """NaN -> 0, +-Inf -> +-1e5 in every gradient, as StyleGAN2-ADA's loop does before each optimizer step."""
    return optax.stateless(
        lambda updates, params: jax.tree.map(lambda g: jnp.nan_to_num(g, nan=0.0, posinf=1e5, neginf=-1e5), updates)
    )


def lazy_regularized_hyperparameters(o: ml_collections.ConfigDict, lr: float, interval: int) -> dict[str, float]:
    """{'lr', 'b1', 'b2'} of Adam for a network regularised every ``interval`` steps, scaled as StyleGAN2 does.

    The main and the regularisation phase share one optimizer state; with the ratio k/(k+1),
    lr * ratio and beta ** ratio make k+1 updates of the pair move about as far as k plain ones.
    """
    ratio = interval / (interval + 1)
    return {"lr": lr * ratio, "b1": o.b1**ratio, "b2": o.b2**ratio}


def lazy_regularized_adam(o: ml_collections.ConfigDict, lr: float, interval: int) -> optax.GradientTransformation:
    """Adam with `lazy_regularized_hyperparameters`, gradients sanitised first."""
    _check_moments(o)
    h = lazy_regularized_hyperparameters(o, lr, interval)
    return optax.chain(sanitize_gradients(), optax.adam(h["lr"], h["b1"], h["b2"], eps=o.eps))
