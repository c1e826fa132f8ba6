"""ADA: StyleGAN2-ADA's differentiable augmentation as a pure function, and its adaptive probability.

    images = augment(images, p, key, "bgc")             # NHWC in [-1, 1]; p a traced scalar
    ada = controller.accumulate(ada, real_logits)        # every D call on augmented reals
    ada = controller.adjust(ada, target=0.6, batch_size=64, due=(step + 1) % 4 == 0)

``python -m clr_gan_jax.augment --images=DIR --outdir=OUT`` shows what a pipe does to a folder of images.
"""

from clr_gan_jax.augment import controller
from clr_gan_jax.augment.controller import AdaState
from clr_gan_jax.augment.pipe import augment
from clr_gan_jax.augment.spec import PIPES, AugmentSpec, resolve

__all__ = ["PIPES", "AdaState", "AugmentSpec", "augment", "controller", "resolve"]
