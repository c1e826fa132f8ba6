"""What an ADA pipe does: per-transform probability multipliers and strengths, and the named pipes of StyleGAN2-ADA."""

import dataclasses

from clr_gan_jax.errors import UserError
from clr_gan_jax.registry import Registry

NUM_BANDS = 4


@dataclasses.dataclass(frozen=True)
class AugmentSpec:
    """One augmentation pipe (StyleGAN2-ADA's AugmentPipe arguments, same names and defaults).

    A transform runs on a sample with probability ``multiplier * p``; a multiplier of 0 removes it from the
    computation. Strengths: ``*_std`` are standard deviations (of log2 for scales), ``*_max`` ranges (1 = a full
    circle for angles), translations and the cutout size are fractions of the image size.
    """

    # Pixel blitting: x-flip, 90-degree rotations, integer translation.
    xflip: float = 0.0
    rotate90: float = 0.0
    xint: float = 0.0
    xint_max: float = 0.125
    # General geometry: isotropic scale, arbitrary rotation, anisotropic scale, fractional translation.
    scale: float = 0.0
    rotate: float = 0.0
    aniso: float = 0.0
    xfrac: float = 0.0
    scale_std: float = 0.2
    rotate_max: float = 1.0
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    # Colour: brightness, contrast, luma flip, hue rotation, saturation.
    brightness: float = 0.0
    contrast: float = 0.0
    lumaflip: float = 0.0
    hue: float = 0.0
    saturation: float = 0.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5
    hue_max: float = 1.0
    saturation_std: float = 1.0
    # Image-space filtering: amplification of four frequency bands (lowest first).
    imgfilter: float = 0.0
    imgfilter_bands: tuple[float, ...] = (1.0,) * NUM_BANDS
    imgfilter_std: float = 1.0
    # Corruptions: additive Gaussian noise, cutout.
    noise: float = 0.0
    cutout: float = 0.0
    noise_std: float = 0.1
    cutout_size: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "imgfilter_bands", tuple(float(b) for b in self.imgfilter_bands))
        if len(self.imgfilter_bands) != NUM_BANDS:
            raise UserError(f"imgfilter_bands has {len(self.imgfilter_bands)} entries; give {NUM_BANDS}.")
        negative = [
            f.name for f in dataclasses.fields(self) if f.name != "imgfilter_bands" and getattr(self, f.name) < 0
        ]
        if negative or min(self.imgfilter_bands) < 0:
            raise UserError(f"Augment settings must be >= 0: {', '.join(negative) or 'imgfilter_bands'}.")

    @property
    def has_geometry(self) -> bool:
        return max(self.xflip, self.rotate90, self.xint, self.scale, self.rotate, self.aniso, self.xfrac) > 0

    @property
    def has_color(self) -> bool:
        return max(self.brightness, self.contrast, self.lumaflip, self.hue, self.saturation) > 0


PIPES = Registry("augment pipe")

_BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
_GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
_COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
_FILTER = {"imgfilter": 1}
_NOISE = {"noise": 1}
_CUTOUT = {"cutout": 1}
# StyleGAN2-ADA's --augpipe choices; the paper's default is bgc.
for _name, _multipliers in {
    "blit": _BLIT,
    "geom": _GEOM,
    "color": _COLOR,
    "filter": _FILTER,
    "noise": _NOISE,
    "cutout": _CUTOUT,
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, **_FILTER},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE, **_CUTOUT},
}.items():
    PIPES.register(_name)(AugmentSpec(**_multipliers))


def resolve(pipe: "str | AugmentSpec") -> AugmentSpec:
    """A registered pipe name (blit, geom, color, filter, noise, cutout, bg, bgc, bgcf, bgcfn, bgcfnc) or a spec."""
    return pipe if isinstance(pipe, AugmentSpec) else PIPES.get(pipe)
