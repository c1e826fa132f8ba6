"""One StyleGAN2 (G, D) pair from plain arguments, for the architecture registry."""

from collections.abc import Sequence

import jax.numpy as jnp

from clr_gan_jax.errors import UserError
from clr_gan_jax.models.stylegan2.discriminator import Discriminator
from clr_gan_jax.models.stylegan2.generator import Generator

COMPUTE_DTYPES = ("float32", "bfloat16")


def build(
    data_shape: Sequence[int],
    num_classes: int = 0,
    *,
    z_dim: int = 512,
    w_dim: int = 512,
    mapping_layers: int = 8,
    channel_base: int = 32768,
    channel_max: int = 512,
    g_architecture: str = "skip",
    d_architecture: str = "resnet",
    num_fp16_res: int = 0,
    conv_clamp: float | None = None,
    mbstd_group_size: int | None = 4,
    compute_dtype: str = "float32",
    d_heads: tuple[tuple[str, int], ...] = (),
    d_decoder: tuple[int, int, int] | None = None,
) -> tuple[Generator, Discriminator]:
    """(Generator, Discriminator) for images of ``data_shape`` (R, R, C), as the official train.py builds them.

    The official cfgs: channel_base = fmaps * 32768 with channel_max 512; 'cifar' is fmaps 1, mapping_layers 2,
    d_architecture 'orig', mbstd_group_size 32; the paper configs use 8 mapping layers. ``num_fp16_res`` and
    ``conv_clamp`` (official: 4 and 256) set where ``compute_dtype`` applies and the clamp. ``d_decoder``:
    (resolution, feature resolution, w width) of GLeaD's decoder in D, None for none.
    """
    resolution, width, channels = data_shape
    if resolution != width:
        raise UserError(f"StyleGAN2 needs square images, got {resolution}x{width}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise UserError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
    shared = {
        "c_dim": num_classes,
        "img_resolution": resolution,
        "img_channels": channels,
        "channel_base": channel_base,
        "channel_max": channel_max,
        "num_fp16_res": num_fp16_res,
        "conv_clamp": conv_clamp,
        "compute_dtype": jnp.dtype(compute_dtype),
    }
    generator = Generator(
        z_dim=z_dim, w_dim=w_dim, mapping_layers=mapping_layers, architecture=g_architecture, **shared
    )
    decoder_res, decoder_feature_res, decoder_w_dim = d_decoder or (0, 0, 0)
    discriminator = Discriminator(
        architecture=d_architecture,
        mbstd_group_size=mbstd_group_size,
        heads=tuple(map(tuple, d_heads)),
        decoder_res=decoder_res,
        decoder_feature_res=decoder_feature_res,
        decoder_w_dim=decoder_w_dim,
        **shared,
    )
    discriminator.check_decoder()
    return generator, discriminator
