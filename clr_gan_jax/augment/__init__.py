"""ADA: StyleGAN2-ADA's differentiable augmentation as a pure function.

    images = augment(images, p, key, "bgc")             # NHWC in [-1, 1]; p a traced scalar
"""

from clr_gan_jax.augment.pipe import augment
from clr_gan_jax.augment.spec import PIPES, AugmentSpec, resolve

__all__ = ["PIPES", "AugmentSpec", "augment", "resolve"]
