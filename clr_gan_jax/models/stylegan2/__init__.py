"""StyleGAN2 / StyleGAN2-ADA networks in JAX/Flax, numerically matching the official PyTorch code.

- ``G, D = build((32, 32, 3), num_classes=0, mapping_layers=2, ...)``;
- ``G.apply(variables, z, labels, train=..., noise_mode=...)`` -> images (N, R, R, C);
- ``D.apply(variables, images, labels)`` -> {"logits", "features", "blocks", one entry per head};
- ``generator_variables(G, state_dict)``, ``discriminator_variables(D, state_dict)``: official weights in.
"""

from clr_gan_jax.models.stylegan2.build import build
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
from clr_gan_jax.models.stylegan2.official_weights import (
    discriminator_from_official_kwargs,
    discriminator_variables,
    generator_from_official_kwargs,
    generator_variables,
    load_state_dicts,
)

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
    "build",
    "discriminator_from_official_kwargs",
    "discriminator_variables",
    "generator_from_official_kwargs",
    "generator_variables",
    "load_state_dicts",
    "normalize_2nd_moment",
    "num_ws",
]
