"""Architectures by name (``model.arch``): each builder turns ``config.model`` into (generator, discriminator).

Every generator is called as ``G.apply(variables, z, labels, train=...)`` and every
discriminator as ``D.apply(variables, x, labels, train=...)``, returning a dict of named
outputs: ``logits`` (N,) (dcgan and mlp with model.d_outputs > 1: (N, d_outputs)), ``features`` (N, F) (its
penultimate features) and one entry per requested head. The modules themselves take plain arguments; only the
builders here read the config. A ``decoder`` (resolution, feature resolution, w width) asks for GLeaD's decoder in D,
which only the stylegan2 architecture has.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from clr_gan_jax.errors import UserError, require, require_number
from clr_gan_jax.models import eigengan, stylegan2
from clr_gan_jax.models.dcgan import (
    D_CONDITIONINGS,
    G_CONDITIONINGS,
    DCGANDiscriminator,
    DCGANGenerator,
    num_stages,
)
from clr_gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from clr_gan_jax.registry import Registry

ARCHITECTURES = Registry("model.arch")
MATMUL_DTYPES = ("float32", "bfloat16")

Heads = tuple[tuple[str, int], ...]
Decoder = tuple[int, int, int] | None


class Networks(NamedTuple):
    """The two networks, G's own regulariser (``g_penalty(g_params) -> {name: term}``, added to G's loss) and G's
    own traversal rows (``traversal(columns, sweep)``, `latents.Row`s of its per-layer coordinates, EigenGAN's)."""

    generator: nn.Module
    discriminator: nn.Module
    g_penalty: Callable[[dict], dict] | None = None
    traversal: Callable[[int, jax.Array], list] | None = None


def build(
    model_config: ml_collections.ConfigDict, example_shape: tuple[int, ...], heads: Heads = (), decoder: Decoder = None
) -> Networks:
    """The networks of ``model_config`` for examples of ``example_shape``; D gets ``heads`` ((name, width) pairs)."""
    builder = ARCHITECTURES.get(model_config.arch)
    if decoder is None:
        return builder(model_config, tuple(example_shape), tuple(heads))
    require(
        model_config.arch == "stylegan2", f"GLeaD's decoder needs model.arch='stylegan2', got {model_config.arch!r}"
    )
    return builder(model_config, tuple(example_shape), tuple(heads), tuple(decoder))


def _require_zoo_fields(m: ml_collections.ConfigDict) -> None:
    """The fields the zoo's dcgan and mlp share."""
    require_number("model.d_outputs", m.d_outputs, at_least=1, integer=True)
    require(isinstance(m.batch_norm, bool), f"model.batch_norm must be True or False, got {m.batch_norm!r}")


@ARCHITECTURES.register("dcgan")
def _dcgan(m: ml_collections.ConfigDict, example_shape: tuple[int, ...], heads: Heads) -> Networks:
    require(
        len(example_shape) == 3, f"model.arch='dcgan' needs images, but the data are {example_shape}-shaped: use 'mlp'"
    )
    resolution, _, channels = example_shape
    try:
        num_stages(resolution)
    except ValueError as e:
        raise UserError(f"data.resolution: {e}") from None
    require(
        m.matmul_dtype in MATMUL_DTYPES, f"model.matmul_dtype must be one of {MATMUL_DTYPES}, got {m.matmul_dtype!r}"
    )
    for name in ("g_width", "d_width"):
        require(
            isinstance(m[name], int) and m[name] >= 2 ** num_stages(resolution),
            f"model.{name}={m[name]!r} is too small for {resolution} px: the width halves per stage, "
            f"so it must be an integer >= {2 ** num_stages(resolution)}",
        )
    require_number("model.num_classes", m.num_classes, at_least=0, integer=True)
    require(
        m.g_conditioning in G_CONDITIONINGS,
        f"model.g_conditioning must be one of {G_CONDITIONINGS}, got {m.g_conditioning!r}",
    )
    require(
        m.d_conditioning in D_CONDITIONINGS,
        f"model.d_conditioning must be one of {D_CONDITIONINGS}, got {m.d_conditioning!r}",
    )
    _require_zoo_fields(m)
    require(
        m.d_outputs == 1 or m.num_classes == 0 or m.d_conditioning != "projection",
        "model.d_outputs > 1 does not combine with model.d_conditioning='projection' (a scalar logit's)",
    )
    require(
        m.batch_norm or not (m.num_classes and m.g_conditioning == "cbn"),
        "model.g_conditioning='cbn' is a BatchNorm: it needs model.batch_norm=True",
    )
    dtype = jnp.dtype(m.matmul_dtype)
    return Networks(
        DCGANGenerator(
            resolution=resolution,
            channels=channels,
            width=m.g_width,
            num_classes=m.num_classes,
            conditioning=m.g_conditioning,
            matmul_dtype=dtype,
            batch_norm=m.batch_norm,
        ),
        DCGANDiscriminator(
            resolution=resolution,
            width=m.d_width,
            heads=heads,
            spectral_norm=m.spectral_norm,
            num_classes=m.num_classes,
            conditioning=m.d_conditioning,
            matmul_dtype=dtype,
            num_outputs=m.d_outputs,
            batch_norm=m.batch_norm,
        ),
    )


@ARCHITECTURES.register("eigengan")
def _eigengan(m: ml_collections.ConfigDict, example_shape: tuple[int, ...], heads: Heads) -> Networks:
    require(len(example_shape) == 3, f"model.arch='eigengan' needs images, but the data are {example_shape}-shaped")
    resolution, _, channels = example_shape
    try:
        stages = num_stages(resolution)
    except ValueError as e:
        raise UserError(f"data.resolution: {e}") from None
    require(m.num_classes == 0, "model.arch='eigengan' is unconditional: set model.num_classes=0")
    require_number("model.eigen_basis", m.eigen_basis, at_least=1, integer=True)
    require_number("model.eigen_ortho", m.eigen_ortho, at_least=0)
    require(
        m.z_dim > stages * m.eigen_basis,
        f"model.z_dim={m.z_dim} must exceed the {stages} layers x model.eigen_basis={m.eigen_basis} subspace "
        "coordinates it holds besides G's input noise",
    )
    for name in ("g_width", "d_width"):
        require(
            isinstance(m[name], int) and m[name] >= 2**stages,
            f"model.{name}={m[name]!r} is too small for {resolution} px: it must be an integer >= {2**stages}",
        )
    generator = eigengan.EigenGANGenerator(
        resolution=resolution, channels=channels, width=m.g_width, basis=m.eigen_basis
    )
    return Networks(
        generator,
        eigengan.EigenGANDiscriminator(resolution=resolution, width=m.d_width, heads=heads),
        g_penalty=functools.partial(eigengan.orthogonality_penalty, weight=float(m.eigen_ortho)),
        traversal=generator.traversal,
    )


@ARCHITECTURES.register("mlp")
def _mlp(m: ml_collections.ConfigDict, example_shape: tuple[int, ...], heads: Heads) -> Networks:
    require(
        len(example_shape) == 1, f"model.arch='mlp' needs points, but the data are {example_shape}-shaped: use 'dcgan'"
    )
    require(
        m.matmul_dtype == "float32",
        "model.matmul_dtype=bfloat16 is for arch=dcgan; the mlp's small products gain nothing from it",
    )
    require(m.num_classes == 0, "model.num_classes > 0 (a conditional model) needs model.arch='dcgan' or 'stylegan2'")
    require(isinstance(m.hidden, int) and m.hidden >= 1, f"model.hidden must be an integer >= 1, got {m.hidden!r}")
    require(isinstance(m.depth, int) and m.depth >= 0, f"model.depth must be an integer >= 0, got {m.depth!r}")
    _require_zoo_fields(m)
    return Networks(
        MLPGenerator(out_dim=example_shape[0], hidden=m.hidden, depth=m.depth, batch_norm=m.batch_norm),
        MLPDiscriminator(
            hidden=m.hidden,
            depth=m.depth,
            heads=heads,
            spectral_norm=m.spectral_norm,
            batch_norm=m.batch_norm,
            num_outputs=m.d_outputs,
        ),
    )


@ARCHITECTURES.register("stylegan2")
def _stylegan2(
    m: ml_collections.ConfigDict, example_shape: tuple[int, ...], heads: Heads, decoder: Decoder = None
) -> Networks:
    require(m.d_outputs == 1, f"model.d_outputs > 1 needs model.arch='dcgan' or 'mlp', got {m.d_outputs!r}")
    require(len(example_shape) == 3, f"model.arch='stylegan2' needs images, but the data are {example_shape}-shaped")
    resolution = example_shape[0]
    require(
        resolution >= 8 and resolution & (resolution - 1) == 0,
        f"data.resolution: model.arch='stylegan2' needs a power of two >= 8, got {resolution}",
    )
    for name in ("w_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group_size"):
        require_number(f"model.{name}", m[name], at_least=1, integer=True)
    require_number("model.num_fp16_res", m.num_fp16_res, at_least=0, integer=True)
    require_number("model.conv_clamp", m.conv_clamp, at_least=0)
    return Networks(
        *stylegan2.build(
            example_shape,
            num_classes=m.num_classes,
            z_dim=m.z_dim,
            w_dim=m.w_dim,
            mapping_layers=m.mapping_layers,
            channel_base=m.channel_base,
            channel_max=m.channel_max,
            g_architecture=m.g_architecture,
            d_architecture=m.d_architecture,
            num_fp16_res=m.num_fp16_res,
            conv_clamp=m.conv_clamp or None,
            mbstd_group_size=m.mbstd_group_size,
            compute_dtype=m.compute_dtype,
            d_heads=heads,
            d_decoder=decoder,
        )
    )
