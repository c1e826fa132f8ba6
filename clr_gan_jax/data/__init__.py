"""Data sources and pipelines. `create_source` turns ``config.data`` into a random-access source.

Names in ``config.data.name``:
  ring8, grid25               2-D Gaussian mixtures, embedded
  digits, stacked_digits      scikit-learn's 8x8 digits (resized), embedded
  cifar10, celeb_a, lsun/<c>  prepared TFDS datasets (array_record), read from ``data.path`` (TFDS data_dir)
  images                      a folder or zip of PNG/JPEG/WebP at ``data.path``, read directly
  shards                      array_record shards written by ``python -m clr_gan_jax.data.dataset_tool``
"""

import ml_collections

from clr_gan_jax.data import embedded
from clr_gan_jax.data.pipeline import make_dataset, make_iterator

POINT_DATASETS = ("ring8", "grid25")
EMBEDDED_IMAGE_DATASETS = ("digits", "stacked_digits")
FILE_DATASETS = ("cifar10", "celeb_a", "lsun/<category>", "images", "shards")
DATASETS = POINT_DATASETS + EMBEDDED_IMAGE_DATASETS + FILE_DATASETS


def is_known(name: str) -> bool:
    return name in DATASETS or (name.startswith("lsun/") and len(name) > len("lsun/"))


def create_source(data_config: ml_collections.ConfigDict):
    """The random-access source named by ``data_config.name`` (items {'image', 'label'})."""
    c = data_config
    name = c.name
    if name == "ring8":
        return embedded.ring8(seed=c.source_seed)
    if name == "grid25":
        return embedded.grid25(seed=c.source_seed)
    if name == "digits":
        return embedded.DigitsSource(c.resolution)
    if name == "stacked_digits":
        return embedded.StackedDigitsSource(c.resolution, seed=c.source_seed)
    if name == "cifar10":
        from clr_gan_jax.data import tfds_source

        return tfds_source.cifar10(c.split, resolution=c.resolution, data_dir=c.path)
    if name == "celeb_a":
        from clr_gan_jax.data import tfds_source

        return tfds_source.celeb_a(c.split, resolution=c.resolution, data_dir=c.path)
    if name.startswith("lsun/"):
        from clr_gan_jax.data import tfds_source

        return tfds_source.lsun(name.split("/", 1)[1], c.split, resolution=c.resolution, data_dir=c.path)
    if name == "images":
        from clr_gan_jax.data.image_files import ImageFolderSource

        return ImageFolderSource(c.path, c.resolution, c.transform, channels=c.channels)
    if name == "shards":
        from clr_gan_jax.data.array_record_source import ArrayRecordImageSource

        return ArrayRecordImageSource(c.path)
    raise ValueError(f"data.name must be one of {DATASETS}, got {name!r}")


def example_shape(data_config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The shape of one example from the config (shards: from their dataset.json), without reading data."""
    c = data_config
    if c.name in POINT_DATASETS:
        return (2,)
    if c.name == "shards":
        from clr_gan_jax.data.array_record_source import read_metadata

        return tuple(read_metadata(c.path)["shape"])
    channels = {"digits": 1, "stacked_digits": 3, "images": c.channels}.get(c.name, 3)
    return (c.resolution, c.resolution, channels)
