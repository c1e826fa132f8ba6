"""StyleGAN2 discriminator (official StyleGAN2-ADA structure) returning CLR-GAN's features with the logits.

Blocks run from the image resolution R down to 8 (fromrgb for the first block, or in every block for 'skip';
conv0 3x3, conv1 3x3 with FIR downsampling; 'resnet' adds a 1x1 downsampling skip, both branches scaled by
sqrt(0.5)), then the 4x4 epilogue: minibatch std, 3x3 conv, FC on the (C, H, W)-ordered flattening, FC out.
CLR-GAN's phi (``latent_code`` in its code) is the output of the epilogue's first FC after its activation.
A conditional D projects the output on ``cmap``, a mapping of the one-hot label (8 lrelu FC layers by default).
With ``decoder_res`` > 0, GLeaD's decoder (official ``networks_glead.py``) runs on the block outputs: see `Decoder`.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.errors import UserError
from clr_gan_jax.models.stylegan2 import ops
from clr_gan_jax.models.stylegan2.generator import MappingNetwork
from clr_gan_jax.models.stylegan2.layers import (
    DEFAULT_FILTER,
    Conv2dLayer,
    FullyConnected,
    block_channels,
    check_architecture,
    check_resolution,
    fp16_resolution,
    one_hot_labels,
)

RESERVED_OUTPUTS = ("logits", "features", "blocks", "glead_image", "glead_feature", "glead_w")


class DiscriminatorBlock(nn.Module):
    """(x, img) at ``resolution`` -> (x, img) at half of it. ``in_channels=0``: the first block (x is None)."""

    in_channels: int
    tmp_channels: int
    out_channels: int
    resolution: int
    img_channels: int
    architecture: str = "resnet"
    activation: str = "lrelu"
    resample_filter: Sequence[float] = DEFAULT_FILTER
    conv_clamp: float | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, img):
        conv = {"activation": self.activation, "conv_clamp": self.conv_clamp}
        if x is not None:
            x = x.astype(self.dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.astype(self.dtype)
            y = Conv2dLayer(self.tmp_channels, 1, name="fromrgb", **conv)(img)
            x = y if x is None else x + y
            img = ops.downsample2d(img, ops.setup_filter(self.resample_filter)) if self.architecture == "skip" else None

        conv0 = Conv2dLayer(self.tmp_channels, 3, name="conv0", **conv)
        conv1 = Conv2dLayer(self.out_channels, 3, down=2, resample_filter=self.resample_filter, name="conv1", **conv)
        if self.architecture == "resnet":
            skip = Conv2dLayer(
                self.out_channels, 1, use_bias=False, down=2, resample_filter=self.resample_filter, name="skip"
            )
            y = skip(x, gain=np.sqrt(0.5))
            x = y + conv1(conv0(x), gain=np.sqrt(0.5))
        else:
            x = conv1(conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """4x4 features -> (logits (N,), features (N, in_channels)), in float32."""

    in_channels: int
    cmap_dim: int
    resolution: int
    img_channels: int
    architecture: str = "resnet"
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    activation: str = "lrelu"
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x, img, cmap=None):
        x = x.astype(jnp.float32)
        if self.architecture == "skip":
            x = x + Conv2dLayer(self.in_channels, 1, activation=self.activation, name="fromrgb")(
                img.astype(jnp.float32)
            )
        if self.mbstd_num_channels > 0:
            x = ops.minibatch_std(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = Conv2dLayer(self.in_channels, 3, activation=self.activation, conv_clamp=self.conv_clamp, name="conv")(x)
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # (C, H, W) order, as the official weights expect
        features = FullyConnected(self.in_channels, activation=self.activation, name="fc")(x)
        out = FullyConnected(self.cmap_dim or 1, name="out")(features)
        if self.cmap_dim:
            return jnp.sum(out * cmap, axis=1) * (1 / np.sqrt(self.cmap_dim)), features
        return out[:, 0], features


class Decoder(nn.Module):
    """GLeaD's purely linear U-Net-style decoder over D's block outputs, and its three heads.

    Block ``b{r}_dec`` for r = 8, 16, ..., ``resolution``: a 1x1 linear convolution with FIR upsampling by 2
    (equalized lr, zero-initialised bias, no clamp, no nonlinearity) to channels[r]; the 8x8 block reads D's 4x4
    features, every later one the previous output concatenated with D's block output at r/2. On the result,
    1x1 linear heads: ``img_proj`` (an image), ``feat_proj1`` (G's block feature at ``feature_resolution``) and
    ``feat_proj2`` averaged over the pixels (one w). Runs in float32 (the official concatenation promotes the
    fp16 block outputs to the decoder's float32).
    """

    resolution: int
    feature_channels: int
    w_dim: int
    img_channels: int
    channel_base: int
    channel_max: int
    resample_filter: Sequence[float] = DEFAULT_FILTER

    @nn.compact
    def __call__(self, blocks: dict[int, jnp.ndarray]) -> dict[str, jnp.ndarray]:
        y = blocks[4].astype(jnp.float32)
        for r in [2**i for i in range(3, check_resolution(self.resolution) + 1)]:
            if r > 8:
                y = jnp.concatenate([y, blocks[r // 2].astype(jnp.float32)], axis=-1)
            channels = block_channels(r, self.channel_base, self.channel_max)
            y = Conv2dLayer(channels, 1, up=2, resample_filter=self.resample_filter, name=f"b{r}_dec")(y)
        w = Conv2dLayer(self.w_dim, 1, name="feat_proj2")(y)
        return {
            "glead_image": Conv2dLayer(self.img_channels, 1, name="img_proj")(y),
            "glead_feature": Conv2dLayer(self.feature_channels, 1, name="feat_proj1")(y),
            "glead_w": w.mean(axis=(1, 2)),
        }


class Discriminator(nn.Module):
    """StyleGAN2 discriminator: ``D.apply(variables, images, labels, train=...)`` -> dict of outputs.

    images: (N, R, R, img_channels) float in [-1, 1]; labels: int class ids (N,) for a conditional D (c_dim > 0),
    ignored when c_dim == 0. Outputs:
    - ``"logits"`` (N,);
    - ``"features"`` (N, channels at 4x4): the epilogue FC output after its activation (CLR-GAN's phi);
    - ``"blocks"``: {resolution: output of the block that produces it}, e.g. {16: (N, 16, 16, C), ..., 4: ...};
    - one entry per ``heads`` (name, width): a linear equalized-lr FC layer on ``features``;
    - with ``decoder_res`` > 0 (GLeaD), the `Decoder`'s ``"glead_image"`` (N, decoder_res, decoder_res,
      img_channels), ``"glead_feature"`` (N, decoder_res, decoder_res, channels[decoder_feature_res]) and
      ``"glead_w"`` (N, decoder_w_dim). channels[] are the generator's too (they share channel_base and max).
    The blocks at the top ``num_fp16_res`` resolutions compute in ``compute_dtype``; the epilogue in float32.
    ``train`` changes nothing (no dropout or batch statistics); it is accepted for the project's convention.
    """

    img_resolution: int
    c_dim: int = 0
    img_channels: int = 3
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    resample_filter: Sequence[float] = DEFAULT_FILTER
    heads: tuple[tuple[str, int], ...] = ()
    decoder_res: int = 0
    decoder_feature_res: int = 0
    decoder_w_dim: int = 0
    compute_dtype: Any = jnp.float32

    def check_decoder(self) -> None:
        """Raises UserError unless the decoder is off or fits the image resolution (G must have blocks above
        ``decoder_feature_res`` to decode from it)."""
        if self.decoder_res == 0:
            return
        powers = {2**i for i in range(2, 16)}
        if self.decoder_res not in powers or not 8 <= self.decoder_res <= self.img_resolution:
            raise UserError(
                f"decoder_res must be a power of two from 8 to the image resolution {self.img_resolution}, "
                f"got {self.decoder_res}"
            )
        if self.decoder_feature_res not in powers or self.decoder_feature_res >= self.img_resolution:
            raise UserError(
                f"the decoded feature resolution must be a power of two from 4 below the image resolution "
                f"{self.img_resolution}, got {self.decoder_feature_res}"
            )
        if self.decoder_w_dim < 1:
            raise UserError(f"the decoder's w width must be >= 1, got {self.decoder_w_dim}")

    @nn.compact
    def __call__(self, images, labels=None, *, train: bool = True):
        del train
        check_architecture(self.architecture)
        if self.img_resolution < 8:
            raise UserError(f"the StyleGAN2 discriminator needs images of at least 8x8, got {self.img_resolution}")
        expected = (self.img_resolution, self.img_resolution, self.img_channels)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise UserError(
                f"discriminator: images must have shape (N, {', '.join(map(str, expected))}), got {images.shape}"
            )
        names = [name for name, _ in self.heads]
        if len(set(names)) != len(names) or set(names) & set(RESERVED_OUTPUTS):
            raise UserError(f"discriminator heads must have distinct names other than {RESERVED_OUTPUTS}, got {names}")
        self.check_decoder()
        c = one_hot_labels(labels, self.c_dim, "discriminator")

        def channels(res):
            return block_channels(res, self.channel_base, self.channel_max)

        low_precision_from = fp16_resolution(self.img_resolution, self.num_fp16_res)
        common = {"img_channels": self.img_channels, "architecture": self.architecture, "conv_clamp": self.conv_clamp}
        x, img, blocks = None, images, {}
        for res in [2**i for i in range(check_resolution(self.img_resolution), 2, -1)]:
            x, img = DiscriminatorBlock(
                in_channels=channels(res) if res < self.img_resolution else 0,
                tmp_channels=channels(res),
                out_channels=channels(res // 2),
                resolution=res,
                resample_filter=self.resample_filter,
                dtype=self.compute_dtype if res >= low_precision_from else jnp.float32,
                name=f"b{res}",
                **common,
            )(x, img)
            blocks[res // 2] = x

        cmap_dim = 0 if self.c_dim == 0 else (self.cmap_dim or channels(4))
        cmap = None
        if self.c_dim:
            mapping = MappingNetwork(
                z_dim=0,
                c_dim=self.c_dim,
                w_dim=cmap_dim,
                num_ws=None,
                num_layers=self.mapping_layers,
                lr_multiplier=self.mapping_lr_multiplier,
                w_avg_beta=None,
                name="mapping_network",
            )
            cmap = mapping(None, c)
        epilogue = DiscriminatorEpilogue(
            channels(4),
            cmap_dim,
            resolution=4,
            mbstd_group_size=self.mbstd_group_size,
            mbstd_num_channels=self.mbstd_num_channels,
            name="b4",
            **common,
        )
        logits, features = epilogue(x, img, cmap)
        outputs = {"logits": logits, "features": features, "blocks": blocks}
        for name, width in self.heads:
            outputs[name] = FullyConnected(width, name=f"head_{name}")(features)
        if self.decoder_res:
            decoder = Decoder(
                self.decoder_res,
                feature_channels=channels(self.decoder_feature_res),
                w_dim=self.decoder_w_dim,
                img_channels=self.img_channels,
                channel_base=self.channel_base,
                channel_max=self.channel_max,
                resample_filter=self.resample_filter,
                name="decoder",
            )
            outputs.update(decoder(blocks))
        return outputs
