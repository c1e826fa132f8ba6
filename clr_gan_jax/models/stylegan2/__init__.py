"""StyleGAN2 / StyleGAN2-ADA networks in JAX/Flax, numerically matching the official PyTorch code.

G = Generator(img_resolution=32, ...)          # G.apply(variables, z, labels, train=..., noise_mode=...)
D = Discriminator(img_resolution=32, ...)      # D.apply(variables, images, labels) -> {"logits", "features", ...}
variables = generator_variables(G, state_dict) # official weights in (see official_weights)
"""

from clr_gan_jax.models.stylegan2.discriminator import Discriminator, DiscriminatorBlock, DiscriminatorEpilogue
from clr_gan_jax.models.stylegan2.generator import (
    Generator,
    MappingNetwork,
    SynthesisBlock,
    SynthesisNetwork,
    normalize_2nd_moment,
    num_ws,
)
from clr_gan_jax.models.stylegan2.layers import Conv2dLayer, FullyConnected, SynthesisLayer, ToRGB

__all__ = [
    "Conv2dLayer",
    "Discriminator",
    "DiscriminatorBlock",
    "DiscriminatorEpilogue",
    "FullyConnected",
    "Generator",
    "MappingNetwork",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGB",
    "normalize_2nd_moment",
    "num_ws",
]
