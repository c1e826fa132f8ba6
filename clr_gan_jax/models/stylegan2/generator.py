"""StyleGAN2 generator: mapping network z -> ws, synthesis network ws -> images (NHWC, about [-1, 1]).

Structure, names and numerics follow the official StyleGAN2-ADA ``training/networks.py``:
- the mapping normalises z (and the label embedding) by their second moment, runs ``num_layers`` lrelu FC
  layers with learning-rate multiplier 0.01, tracks ``w_avg`` (collection ``"w_avg"``) with beta 0.995 when asked,
  broadcasts to ``num_ws`` and applies the truncation trick;
- the synthesis runs one block per resolution 4, 8, ..., R: a learned 4x4 constant and one modulated conv at 4x4,
  then an upsampling conv0 and a conv1; 'skip' sums the upsampled ToRGB outputs of every block, 'orig' has a
  ToRGB at the last block only, 'resnet' adds a 1x1 upsampling skip branch (both branches scaled by sqrt(0.5)).
- Block b takes ``ws[:, i : i + num_conv + num_torgb]`` and advances i by ``num_conv``, so a ToRGB shares its w
  with the next block's conv0; num_ws = 2 log2(R) - 2.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.errors import UserError
from clr_gan_jax.models.stylegan2 import ops
from clr_gan_jax.models.stylegan2.layers import (
    DEFAULT_FILTER,
    Conv2dLayer,
    FullyConnected,
    SynthesisLayer,
    ToRGB,
    block_channels,
    check_architecture,
    check_noise_mode,
    check_resolution,
    fp16_resolution,
    one_hot_labels,
    standard_normal,
)


def normalize_2nd_moment(x, eps: float = 1e-8):
    """x / sqrt(mean(x^2) + eps) over the last axis."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def num_ws(img_resolution: int) -> int:
    """Number of ws the synthesis network takes: one per conv (1 at 4x4, 2 above) plus the last ToRGB."""
    return 2 * check_resolution(img_resolution) - 2


class MappingNetwork(nn.Module):
    """z (N, z_dim) and one-hot c (N, c_dim) -> w (N, w_dim), broadcast to (N, num_ws, w_dim) unless num_ws is None.

    ``z_dim=0`` gives a label-only mapping (the discriminator's cmap). ``w_avg`` is tracked when ``num_ws`` and
    ``w_avg_beta`` are set; it moves towards the batch mean of w (``w_avg <- mean + beta (w_avg - mean)``) only when
    ``update_w_avg`` is True and the ``"w_avg"`` collection is mutable. ``truncation_psi`` is a Python number (1 skips
    the truncation) or an array broadcastable to the ws, e.g. (N, 1, 1) for one psi per sample.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int | None
    num_layers: int = 8
    embed_features: int | None = None
    layer_features: int | None = None
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995

    @nn.compact
    def __call__(self, z, c=None, *, truncation_psi=1.0, truncation_cutoff=None, update_w_avg: bool = False):
        if self.z_dim == 0 and self.c_dim == 0:
            raise UserError("a mapping network needs a latent (z_dim > 0) or a label (c_dim > 0)")
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(jnp.asarray(z, jnp.float32)))
        if self.c_dim > 0:
            embed = FullyConnected(self.embed_features or self.w_dim, name="embed")
            parts.append(normalize_2nd_moment(embed(jnp.asarray(c, jnp.float32))))
        x = jnp.concatenate(parts, axis=1)
        for idx in range(self.num_layers):
            features = self.w_dim if idx == self.num_layers - 1 else (self.layer_features or self.w_dim)
            x = FullyConnected(features, self.activation, self.lr_multiplier, name=f"fc{idx}")(x)

        tracked = self.num_ws is not None and self.w_avg_beta is not None
        if tracked:
            w_avg = self.variable("w_avg", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)
            if update_w_avg and self.is_mutable_collection("w_avg") and not self.is_initializing():
                mean = jax.lax.stop_gradient(x).mean(axis=0)
                w_avg.value = mean + self.w_avg_beta * (w_avg.value - mean)
        if self.num_ws is not None:
            x = jnp.broadcast_to(x[:, None], (x.shape[0], self.num_ws, self.w_dim))

        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return x
        if not tracked:
            raise UserError("truncation needs w_avg: build the mapping network with num_ws and w_avg_beta")
        truncated = w_avg.value + truncation_psi * (x - w_avg.value)
        if self.num_ws is None or truncation_cutoff is None:
            return truncated
        first = (jnp.arange(self.num_ws) < truncation_cutoff)[:, None]
        return jnp.where(first, truncated, x)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (x, img, ws) -> (x, img). ``in_channels=0``: the 4x4 block."""

    in_channels: int
    out_channels: int
    resolution: int
    img_channels: int
    is_last: bool
    architecture: str = "skip"
    resample_filter: Sequence[float] = DEFAULT_FILTER
    conv_clamp: float | None = None
    use_noise: bool = True
    dtype: Any = jnp.float32

    @property
    def num_conv(self) -> int:
        return 1 if self.in_channels == 0 else 2

    @property
    def num_torgb(self) -> int:
        return int(self.is_last or self.architecture == "skip")

    @nn.compact
    def __call__(self, x, img, ws, *, noise_mode: str = "random", fused_modconv: bool = True):
        layer = {
            "resolution": self.resolution,
            "resample_filter": self.resample_filter,
            "conv_clamp": self.conv_clamp,
            "use_noise": self.use_noise,
        }
        conv = {"noise_mode": noise_mode, "fused_modconv": fused_modconv}
        if self.in_channels == 0:
            shape = (self.resolution, self.resolution, self.out_channels)
            const = self.param("const", standard_normal, shape)
            x = jnp.broadcast_to(const.astype(self.dtype), (ws.shape[0], *shape))
            x = SynthesisLayer(self.out_channels, name="conv1", **layer)(x, ws[:, 0], **conv)
        else:
            x = x.astype(self.dtype)
            conv0 = SynthesisLayer(self.out_channels, up=2, name="conv0", **layer)
            conv1 = SynthesisLayer(self.out_channels, name="conv1", **layer)
            if self.architecture == "resnet":
                skip = Conv2dLayer(
                    self.out_channels, 1, use_bias=False, up=2, resample_filter=self.resample_filter, name="skip"
                )
                y = skip(x, gain=np.sqrt(0.5))
                x = conv1(conv0(x, ws[:, 0], **conv), ws[:, 1], gain=np.sqrt(0.5), **conv)
                x = y + x
            else:
                x = conv1(conv0(x, ws[:, 0], **conv), ws[:, 1], **conv)

        if img is not None:
            img = ops.upsample2d(img, ops.setup_filter(self.resample_filter))
        if self.num_torgb:
            torgb = ToRGB(self.img_channels, conv_clamp=self.conv_clamp, name="torgb")
            y = torgb(x, ws[:, self.num_conv], fused_modconv=fused_modconv).astype(jnp.float32)
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, R, R, img_channels), float32.

    The blocks at the top ``num_fp16_res`` resolutions compute in ``compute_dtype`` (the official fp16 blocks;
    bfloat16 on GPU/TPU), the others and the image sum in float32; parameters stay float32.
    ``feature_res`` also returns the output of block ``feature_res`` (after conv1, before ToRGB; GLeaD's
    ``feats[res]``) as float32. ``start=(x, img)`` runs only the blocks above x's resolution, from that block
    output and image (GLeaD's ``feat2img``): ws then has one w per remaining conv plus the last ToRGB,
    2 log2(R / res) + 1, sliced from 0 as the full network slices its own.
    """

    w_dim: int
    img_resolution: int
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    architecture: str = "skip"
    resample_filter: Sequence[float] = DEFAULT_FILTER
    use_noise: bool = True
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        ws,
        *,
        noise_mode: str = "random",
        train: bool = False,
        fused_modconv: bool | None = None,
        feature_res: int | None = None,
        start: tuple | None = None,
    ):
        check_architecture(self.architecture)
        check_noise_mode(noise_mode)
        log2 = check_resolution(self.img_resolution)
        x = img = None
        first = 2
        if start is not None:
            x, img = start
            first = check_resolution(x.shape[1]) + 1
            if first > log2:
                raise UserError(f"synthesis: no block above {x.shape[1]}x{x.shape[1]} at {self.img_resolution} px")
        remaining = num_ws(self.img_resolution) if start is None else 2 * (log2 - first + 1) + 1
        expected = (remaining, self.w_dim)
        if ws.ndim != 3 or ws.shape[1:] != expected:
            raise UserError(f"synthesis: ws must have shape (N, {expected[0]}, {expected[1]}), got {ws.shape}")
        ws = ws.astype(jnp.float32)
        low_precision_from = fp16_resolution(self.img_resolution, self.num_fp16_res)
        feature = None
        w_idx = 0
        for res in [2**i for i in range(first, log2 + 1)]:
            dtype = self.compute_dtype if res >= low_precision_from else jnp.float32
            block = SynthesisBlock(
                in_channels=0 if res == 4 else block_channels(res // 2, self.channel_base, self.channel_max),
                out_channels=block_channels(res, self.channel_base, self.channel_max),
                resolution=res,
                img_channels=self.img_channels,
                is_last=res == self.img_resolution,
                architecture=self.architecture,
                resample_filter=self.resample_filter,
                conv_clamp=self.conv_clamp,
                use_noise=self.use_noise,
                dtype=dtype,
                name=f"b{res}",
            )
            block_ws = ws[:, w_idx : w_idx + block.num_conv + block.num_torgb]
            w_idx += block.num_conv
            fused = fused_modconv
            if fused is None:  # the official default: fused for inference in float32 or with one sample
                fused = not train and (jnp.dtype(dtype) == jnp.float32 or ws.shape[0] == 1)
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused)
            if res == feature_res:
                feature = x.astype(jnp.float32)
        if feature_res is None:
            return img
        if feature is None:
            raise UserError(
                f"synthesis: no block at feature_res={feature_res} (blocks {2**first}..{self.img_resolution})"
            )
        return img, feature


class Generator(nn.Module):
    """StyleGAN2 generator: ``G.apply(variables, z, labels, train=..., ...)`` -> images (N, R, R, C).

    Variables: ``params``, ``w_avg`` (the tracked mean of w) and ``noise_const`` (fixed noise maps). ``labels`` are
    int class ids (N,) for a conditional G (c_dim > 0), one-hot encoded inside; ignored when c_dim == 0. Random
    noise draws from the ``"noise"`` rng stream. ``fused_modconv=None`` follows the official default.
    """

    img_resolution: int
    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    architecture: str = "skip"
    resample_filter: Sequence[float] = DEFAULT_FILTER
    use_noise: bool = True
    compute_dtype: Any = jnp.float32

    @staticmethod
    def num_ws_for(img_resolution: int) -> int:
        """Number of ws of a generator at ``img_resolution`` (8 at 32 px, 10 at 64, 14 at 256)."""
        return num_ws(img_resolution)

    def setup(self):
        self.mapping_network = MappingNetwork(
            z_dim=self.z_dim,
            c_dim=self.c_dim,
            w_dim=self.w_dim,
            num_ws=num_ws(self.img_resolution),
            num_layers=self.mapping_layers,
            lr_multiplier=self.mapping_lr_multiplier,
            w_avg_beta=self.w_avg_beta,
        )
        self.synthesis_network = SynthesisNetwork(
            w_dim=self.w_dim,
            img_resolution=self.img_resolution,
            img_channels=self.img_channels,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            num_fp16_res=self.num_fp16_res,
            conv_clamp=self.conv_clamp,
            architecture=self.architecture,
            resample_filter=self.resample_filter,
            use_noise=self.use_noise,
            compute_dtype=self.compute_dtype,
        )

    def __call__(
        self,
        z,
        labels=None,
        *,
        train: bool = False,
        truncation_psi=1.0,
        truncation_cutoff=None,
        noise_mode: str = "random",
        update_w_avg: bool = False,
        fused_modconv: bool | None = None,
    ):
        ws = self.mapping(
            z, labels, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_w_avg=update_w_avg
        )
        return self.synthesis(ws, noise_mode=noise_mode, train=train, fused_modconv=fused_modconv)

    def mapping(self, z, labels=None, *, truncation_psi=1.0, truncation_cutoff=None, update_w_avg: bool = False):
        """z (N, z_dim), labels -> ws (N, num_ws, w_dim)."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise UserError(f"generator: z must have shape (N, {self.z_dim}), got {z.shape}")
        c = one_hot_labels(labels, self.c_dim, "generator")
        return self.mapping_network(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_w_avg=update_w_avg
        )

    def synthesis(
        self,
        ws,
        *,
        noise_mode: str = "random",
        train: bool = False,
        fused_modconv: bool | None = None,
        feature_res: int | None = None,
    ):
        """ws (N, num_ws, w_dim) -> images (N, R, R, img_channels) float32; with ``feature_res``, (images, the
        output of that block (N, res, res, channels[res]))."""
        return self.synthesis_network(
            ws, noise_mode=noise_mode, train=train, fused_modconv=fused_modconv, feature_res=feature_res
        )

    def synthesis_from(
        self,
        ws,
        feature_map,
        image,
        *,
        noise_mode: str = "random",
        train: bool = False,
        fused_modconv: bool | None = None,
    ):
        """G's blocks above res = feature_map's resolution, from x = ``feature_map`` (N, res, res, channels[res])
        and img = ``image`` (N, res, res, img_channels): GLeaD's G as a decoder. ws: (N, 2 log2(R / res) + 1,
        w_dim), the first for the first remaining block."""
        return self.synthesis_network(
            ws, noise_mode=noise_mode, train=train, fused_modconv=fused_modconv, start=(feature_map, image)
        )
