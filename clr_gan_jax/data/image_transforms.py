"""Decoding, validation and the geometric transforms of the StyleGAN2-ADA dataset tool.

One `ImageTransform` serves every image source (folders, zips, LMDB, TFDS) and the
dataset tool, so converting a source and reading it directly give the same pixels.

Transforms (``transform=``):
  none              the image must already have the target size (StyleGAN2-ADA's
                    training loader); another size is an error, not a bad image.
  resize            resize to width x height, aspect ratio not preserved: the
                    dataset tool's ``--width/--height`` without ``--transform``.
  center-crop       crop the largest centred square (or a fixed ``crop_size``
                    square, as for CelebA) and resize it to width x height.
  center-crop-wide  StyleGAN2-ADA's LSUN car recipe, exactly: keep the middle
                    round(width * H / W) rows of the W x H image (all columns),
                    resize them to width x height and paste the result in the middle
                    of a black width x width canvas. The kept rows are counted in
                    input pixels, so an input wider than ``width`` is squeezed
                    horizontally, one exactly ``width`` wide vertically (as in the
                    official datasets). Images narrower than ``width`` or with fewer
                    than ``height`` kept rows do not fit (`UnfitImageError`); the
                    dataset tool drops them as StyleGAN2-ADA does.

Resize filters are PIL's ``box`` and ``lanczos``. Colour: ``channels=3`` converts
grayscale, palette and CMYK images to RGB and drops alpha; ``channels=1``
converts to 8-bit grayscale. 16-bit and float images are bad images.
"""

import dataclasses
import io
import struct
import zlib

import numpy as np
from PIL import Image

from clr_gan_jax.errors import DataError

TRANSFORMS = ("none", "resize", "center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}
_EIGHT_BIT_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
)
# What PIL raises on corrupt or truncated data; anything else is a bug, not a bad image.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)
DEFAULT_FIX = "remove it, or skip bad images with --skip-bad"


class BadImageError(DataError):
    """One input image cannot be used: ``name``, ``problem`` and the ``fix`` the message ends with."""

    def __init__(self, name: str, problem: str, fix: str = DEFAULT_FIX):
        super().__init__(name, problem, fix)  # all three in args, so the error survives pickling between processes
        self.name, self.problem, self.fix = name, problem, fix

    def __str__(self) -> str:
        return f"{self.name} {self.problem}; {self.fix}."

    def with_fix(self, fix: str) -> "BadImageError":
        return type(self)(self.name, self.problem, fix)


class UnfitImageError(BadImageError):
    """An image too small for the crop; the dataset tool drops these as StyleGAN2-ADA does."""


@dataclasses.dataclass(frozen=True)
class ImageTransform:
    """Turns a decoded image into a uint8 (H, W, channels) array of the target geometry.

    ``width`` and ``height`` are the target size; they must be equal except for
    ``center-crop-wide``, whose output is a ``width`` x ``width`` canvas.
    """

    width: int
    height: int
    transform: str = "none"
    resize_filter: str = "lanczos"
    channels: int = 3
    crop_size: int | None = None

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise DataError(f"Unknown transform {self.transform!r}; use one of {', '.join(TRANSFORMS)}.")
        if self.resize_filter not in RESIZE_FILTERS:
            raise DataError(f"Unknown resize filter {self.resize_filter!r}; use one of {', '.join(RESIZE_FILTERS)}.")
        if self.channels not in (1, 3):
            raise DataError(f"channels={self.channels} is not supported; use 1 (grayscale) or 3 (RGB).")
        if min(self.width, self.height) < 1:
            raise DataError(f"Target size {self.width}x{self.height} must be positive.")
        if self.transform == "center-crop-wide":
            if self.height > self.width:
                raise DataError(f"center-crop-wide needs height <= width, got {self.width}x{self.height}.")
        elif self.width != self.height:
            raise DataError(
                f"Target size {self.width}x{self.height} is not square; only center-crop-wide makes non-square crops."
            )
        if self.crop_size is not None and self.transform != "center-crop":
            raise DataError("crop_size is only used with transform='center-crop'.")

    @classmethod
    def create(cls, resolution, transform: str = "none", **kwargs) -> "ImageTransform":
        """``resolution`` is an int (square) or a (width, height) pair for center-crop-wide."""
        width, height = (resolution, resolution) if np.isscalar(resolution) else resolution
        return cls(int(width), int(height), transform, **kwargs)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (H, W, C) of every output image."""
        return (self.width, self.width, self.channels)

    def check(self, size: tuple[int, int], mode: str, name: str) -> None:
        """Validates an image from its header (size as PIL's (width, height), mode)."""
        if mode not in _EIGHT_BIT_MODES:
            raise BadImageError(name, f"has pixel mode {mode} (16-bit or float); convert it to 8-bit")
        width, height = size
        if self.transform == "none" and (width, height) != (self.width, self.height):
            raise DataError(
                f"{name} is {width}x{height}, not {self.width}x{self.height}; give an output size to resize every "
                "image (dataset tool: --width and --height; sources: transform='resize') or crop with center-crop."
            )
        if self.transform == "center-crop" and self.crop_size and self.crop_size > min(width, height):
            raise UnfitImageError(name, f"is {width}x{height}, smaller than the {self.crop_size}px crop")
        if self.transform == "center-crop-wide" and (
            width < self.width or self._crop_box(width, height)[3] < self.height
        ):
            raise UnfitImageError(
                name,
                f"is {width}x{height}, too small for the {self.width}x{self.height} center-crop-wide crop "
                "(the dataset tool drops such images, as StyleGAN2-ADA does)",
            )

    def __call__(self, image: Image.Image, name: str) -> np.ndarray:
        """Checks, converts and crops/resizes a PIL image; decoding errors name the file."""
        self.check(image.size, image.mode, name)
        try:
            image = image.convert("RGB" if self.channels == 3 else "L")
            left, top, crop_w, crop_h = self._crop_box(*image.size)
            if (crop_w, crop_h) != image.size:
                # Crop, then resize: resize(box=...) would filter across the crop edge, unlike StyleGAN2-ADA.
                image = image.crop((left, top, left + crop_w, top + crop_h))
            if image.size != (self.width, self.height):
                image = image.resize((self.width, self.height), RESIZE_FILTERS[self.resize_filter])
            pixels = np.asarray(image, dtype=np.uint8)
        except DECODE_ERRORS as e:
            raise BadImageError(name, f"cannot be decoded ({e})") from e
        pixels = pixels.reshape(pixels.shape[:2] + (self.channels,))
        if self.transform == "center-crop-wide":
            canvas = np.zeros(self.shape, np.uint8)
            top = (self.width - self.height) // 2
            canvas[top : top + self.height] = pixels
            pixels = canvas
        return pixels

    def from_array(self, pixels: np.ndarray, name: str) -> np.ndarray:
        """Applies the transform to a decoded uint8 (H, W[, C]) array, e.g. from TFDS."""
        if self.transform == "none" and pixels.shape == (self.height, self.width, self.channels):
            return pixels
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        return self(Image.fromarray(pixels), name)

    def _crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, crop width, crop height) of the centred crop, integer-aligned as StyleGAN2-ADA."""
        if self.transform == "center-crop":
            crop_w = crop_h = self.crop_size or min(width, height)
        elif self.transform == "center-crop-wide":
            crop_w, crop_h = (width, round(self.width * height / width))  # round half to even, as np.round
        else:
            crop_w, crop_h = width, height
        return (width - crop_w) // 2, (height - crop_h) // 2, crop_w, crop_h


def open_image(data: bytes, name: str) -> Image.Image:
    """Reads an image header from bytes (pixels are decoded lazily); BadImageError if unreadable."""
    try:
        return Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError as e:
        raise BadImageError(name, "is not an image (unrecognised or corrupt data)") from e
    except DECODE_ERRORS as e:
        raise BadImageError(name, f"is not a readable image ({e})") from e


def load_image(data: bytes, name: str, transform: ImageTransform) -> np.ndarray:
    """Decodes encoded image bytes and applies ``transform``."""
    with open_image(data, name) as image:
        return transform(image, name)
