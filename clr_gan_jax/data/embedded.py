"""Datasets that ship with the package: no download, ready on any machine.

Every source here is a grain random-access source: ``len(source)`` and
``source[i] -> {'image': ..., 'label': np.int32}``. Images are uint8 HWC;
2-D points are float32 of shape (2,) already in [-1, 1].
"""

import functools

import numpy as np
from PIL import Image

# Ring8 and Grid25 as in the GAN zoo (datasets/toy.py): std 0.5, 400 samples per mode, all scaled by 1/15 into
# [-1, 1]. Ring8's centres are 10*(cos t, sin t), t = linspace(0, 1.75, 8)*pi; Grid25's are linspace(-10, 10, 5)^2.
# (VEEGAN / PacGAN's grid is 4x tighter relative to its spacing, std 0.05 on a spacing of 2: at the zoo's 5000 steps
# no objective of the mode-collapse study covered more than 2 of its modes.)
ZOO_SCALE = 1.0 / 15.0
ZOO_STD = 0.5 * ZOO_SCALE
_RING8_ANGLES = np.linspace(0, 1.75, 8) * np.pi
RING8_CENTRES = (10.0 * np.stack([np.cos(_RING8_ANGLES), np.sin(_RING8_ANGLES)], 1) * ZOO_SCALE).astype(np.float32)
GRID25_CENTRES = (
    np.stack(np.meshgrid(np.linspace(-10, 10, 5), np.linspace(-10, 10, 5), indexing="ij"), -1).reshape(-1, 2)
    * ZOO_SCALE
).astype(np.float32)


class GaussianMixtureSource:
    """A fixed, seeded sample of an isotropic Gaussian mixture; labels are mode indices."""

    def __init__(self, centres: np.ndarray, std: float, samples_per_mode: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.centres = np.asarray(centres, np.float32)
        self.std = float(std)
        labels = np.repeat(np.arange(len(centres)), samples_per_mode)
        self._points = (self.centres[labels] + std * rng.standard_normal((len(labels), 2))).astype(np.float32)
        self._labels = labels.astype(np.int32)
        self.num_classes = len(centres)

    def __len__(self) -> int:
        return len(self._points)

    def __getitem__(self, index) -> dict:
        """Example ``index``, or the stacked examples of an index array."""
        return {"image": self._points[index], "label": self._labels[index]}

    read_batch = __getitem__


def ring8(seed: int = 0) -> GaussianMixtureSource:
    return GaussianMixtureSource(RING8_CENTRES, ZOO_STD, samples_per_mode=400, seed=seed)


def grid25(seed: int = 0) -> GaussianMixtureSource:
    return GaussianMixtureSource(GRID25_CENTRES, ZOO_STD, samples_per_mode=400, seed=seed)


@functools.lru_cache(maxsize=8)
def load_digits_images(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images), bilinearly resized: (N, R, R) uint8 and (N,) int32 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    if resolution == 8:
        images = small
    else:
        images = np.stack(
            [np.asarray(Image.fromarray(im).resize((resolution, resolution), Image.BILINEAR)) for im in small]
        )
    images.setflags(write=False)
    return images, digits.target.astype(np.int32)


class DigitsSource:
    """scikit-learn's digits as 1-channel images with their class labels."""

    num_classes = 10

    def __init__(self, resolution: int):
        self._images, self._labels = load_digits_images(resolution)

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, index) -> dict:
        """Example ``index``, or the stacked examples of an index array."""
        return {"image": self._images[index][..., None], "label": self._labels[index]}

    read_batch = __getitem__


class StackedDigitsSource:
    """Three digits stacked in the R, G and B channels: 1000 modes (the VEEGAN / PacGAN protocol).

    Item ``i`` picks its three digits with a generator seeded by (seed, i), so the set
    is fixed for a seed and needs no storage. The label is 100*d_R + 10*d_G + d_B.
    """

    num_classes = 1000

    def __init__(self, resolution: int, size: int = 60000, seed: int = 0):
        self._images, self._labels = load_digits_images(resolution)
        self._size = size
        self._seed = seed

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> dict:
        picks = np.random.default_rng((self._seed, int(index))).integers(0, len(self._images), size=3)
        digits = self._labels[picks]
        return {
            "image": np.stack([self._images[p] for p in picks], axis=-1),
            "label": np.int32(100 * digits[0] + 10 * digits[1] + digits[2]),
        }
