"""Generators and discriminators. Every D returns (logits, phi); phi has G's latent shape."""

import jax.numpy as jnp
import ml_collections

from clr_gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from clr_gan_jax.models.mlp import MLPDiscriminator, MLPGenerator

ARCHITECTURES = ("mlp", "dcgan")
MATMUL_DTYPES = ("float32", "bfloat16")


def create(model_config: ml_collections.ConfigDict, data_shape: tuple[int, ...]):
    """Builds (generator, discriminator) from ``config.model`` and the shape of one data example."""
    arch, m = model_config.arch, model_config
    if arch == "mlp":
        return (
            MLPGenerator(out_dim=data_shape[-1], hidden=m.hidden, depth=m.depth),
            MLPDiscriminator(hidden=m.hidden, depth=m.depth, phi_dim=m.z_dim),
        )
    if arch == "dcgan":
        matmul_dtype = m.get("matmul_dtype", "float32")  # configs saved before the field existed
        if matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"model.matmul_dtype must be one of {MATMUL_DTYPES}, got {matmul_dtype!r}")
        resolution, _, channels = data_shape
        dtype = jnp.dtype(matmul_dtype)
        return (
            DCGANGenerator(resolution=resolution, channels=channels, width=m.g_width, matmul_dtype=dtype),
            DCGANDiscriminator(resolution=resolution, width=m.d_width, phi_dim=m.z_dim, matmul_dtype=dtype),
        )
    raise ValueError(f"model.arch must be one of {ARCHITECTURES}, got {arch!r}")
