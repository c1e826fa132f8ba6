"""Data sources by name (``data.name``) and the grain pipeline that batches them.

  ring8, grid25               2-D Gaussian mixtures, embedded
  digits, stacked_digits      scikit-learn's 8x8 digits (resized), embedded
  cifar10, celeb_a, lsun/<c>  prepared TFDS datasets (array_record), read from ``data.path`` (TFDS data_dir)
  images                      a folder or zip of PNG/JPEG/WebP at ``data.path``, read directly
  shards                      array_record shards written by ``python -m clr_gan_jax.data.dataset_tool``

Every source is random access: ``len(source)``, ``source[i] -> {'image', 'label'}``.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from clr_gan_jax.data import embedded
from clr_gan_jax.data.pipeline import make_dataset, make_iterator, read_batch
from clr_gan_jax.errors import require, require_number
from clr_gan_jax.registry import Registry

__all__ = [
    "DATASETS",
    "Dataset",
    "create_source",
    "example_shape",
    "is_points",
    "is_stacked",
    "make_dataset",
    "make_iterator",
    "read_batch",
]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """``source(data_config)`` opens the data; ``shape(data_config)`` is one example's shape, known without reading.
    ``stacked`` marks images whose channels are separate grayscale images (stacked digits)."""

    source: Callable[[ml_collections.ConfigDict], Any]
    shape: Callable[[ml_collections.ConfigDict], tuple[int, ...]]
    needs_path: bool = False
    stacked: bool = False


DATASETS = Registry("data.name")


def _image_shape(channels: int) -> Callable:
    return lambda c: (c.resolution, c.resolution, channels)


def _tfds(c):
    """cifar10, celeb_a or lsun/<category> from TFDS (imported only when used)."""
    from clr_gan_jax.data import tfds_source

    family, _, category = c.name.partition("/")
    builder = getattr(tfds_source, family)
    args = (category, c.split) if category else (c.split,)
    return builder(*args, resolution=c.resolution, data_dir=c.path)


DATASETS.register("ring8")(Dataset(lambda c: embedded.ring8(seed=c.source_seed), lambda c: (2,)))
DATASETS.register("grid25")(Dataset(lambda c: embedded.grid25(seed=c.source_seed), lambda c: (2,)))
DATASETS.register("digits")(Dataset(lambda c: embedded.DigitsSource(c.resolution), _image_shape(1)))
DATASETS.register("stacked_digits")(
    Dataset(lambda c: embedded.StackedDigitsSource(c.resolution, seed=c.source_seed), _image_shape(3), stacked=True)
)
for _name in ("cifar10", "celeb_a", "lsun"):
    DATASETS.register(_name)(Dataset(_tfds, _image_shape(3)))


def _image_folder(c):
    from clr_gan_jax.data.image_files import ImageFolderSource

    return ImageFolderSource(c.path, c.resolution, c.transform, channels=c.channels, skip_bad=c.skip_bad)


def _shards(c):
    from clr_gan_jax.data.array_record_source import ArrayRecordImageSource

    return ArrayRecordImageSource(c.path)


def _shards_shape(c):
    from clr_gan_jax.data.array_record_source import read_metadata

    shape = tuple(read_metadata(c.path)["shape"])
    require(
        shape[0] == c.resolution,
        f"data.resolution={c.resolution} but the shards in {c.path} are {shape[0]} px: "
        f"set --config.data.resolution={shape[0]}",
    )
    return shape


DATASETS.register("images")(Dataset(_image_folder, lambda c: (c.resolution, c.resolution, c.channels), needs_path=True))
DATASETS.register("shards")(Dataset(_shards, _shards_shape, needs_path=True))


def dataset(data_config: ml_collections.ConfigDict) -> Dataset:
    """The registry entry of ``data.name`` ('lsun/<category>' -> 'lsun'), with its fields checked."""
    c = data_config
    family, _, category = c.name.partition("/")
    entry = DATASETS.get(family)
    require(family != "lsun" or bool(category), "data.name='lsun' needs a category, e.g. 'lsun/church_outdoor'")
    require(not category or family == "lsun", f"data.name={c.name!r}: only lsun takes a '/<category>'")
    if entry.needs_path:
        require(bool(c.path), f"data.path must name the {c.name} to read (data.name={c.name!r})")
    require_number("data.resolution", c.resolution, at_least=1, integer=True)
    require(c.channels in (1, 3), f"data.channels must be 1 or 3, got {c.channels!r}")
    require(not c.mirror or len(entry.shape(c)) == 3, f"data.mirror flips images; data.name={c.name!r} holds points")
    return entry


def create_source(data_config: ml_collections.ConfigDict):
    """The random-access source named by ``data_config.name`` (items {'image', 'label'})."""
    return dataset(data_config).source(data_config)


def example_shape(data_config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The shape of one example from the config (shards: from their dataset.json), without reading data."""
    return tuple(dataset(data_config).shape(data_config))


def is_stacked(data_config: ml_collections.ConfigDict) -> bool:
    """Whether each channel of an example is its own grayscale image (stacked digits)."""
    return dataset(data_config).stacked


def is_points(data_config: ml_collections.ConfigDict) -> bool:
    """Whether examples are points (2-D mixtures) rather than images."""
    return len(example_shape(data_config)) == 1
