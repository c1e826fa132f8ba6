"""Generators and discriminators. Every D returns (logits, phi); phi has G's latent shape."""

import ml_collections

from clr_gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from clr_gan_jax.models.mlp import MLPDiscriminator, MLPGenerator

ARCHITECTURES = ("mlp", "dcgan")


def create(model_config: ml_collections.ConfigDict, data_shape: tuple[int, ...]):
    """Builds (generator, discriminator) from ``config.model`` and the shape of one data example."""
    arch = model_config.arch
    if arch == "mlp":
        return (
            MLPGenerator(out_dim=data_shape[-1], hidden=model_config.hidden, depth=model_config.depth),
            MLPDiscriminator(hidden=model_config.hidden, depth=model_config.depth, phi_dim=model_config.z_dim),
        )
    if arch == "dcgan":
        resolution, _, channels = data_shape
        return (
            DCGANGenerator(resolution=resolution, channels=channels, width=model_config.g_width),
            DCGANDiscriminator(resolution=resolution, width=model_config.d_width, phi_dim=model_config.z_dim),
        )
    raise ValueError(f"model.arch must be one of {ARCHITECTURES}, got {arch!r}")
