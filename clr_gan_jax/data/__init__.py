"""Data sources and pipelines. `create_source` turns ``config.data`` into a random-access source."""

import ml_collections

from clr_gan_jax.data import embedded
from clr_gan_jax.data.pipeline import make_dataset, make_iterator

IMAGE_DATASETS = ("digits", "stacked_digits")
POINT_DATASETS = ("ring8", "grid25")
DATASETS = POINT_DATASETS + IMAGE_DATASETS


def create_source(data_config: ml_collections.ConfigDict):
    """The random-access source named by ``data_config.name`` (items {'image', 'label'})."""
    name = data_config.name
    if name == "ring8":
        return embedded.ring8(seed=data_config.source_seed)
    if name == "grid25":
        return embedded.grid25(seed=data_config.source_seed)
    if name == "digits":
        return embedded.DigitsSource(data_config.resolution)
    if name == "stacked_digits":
        return embedded.StackedDigitsSource(data_config.resolution, seed=data_config.source_seed)
    raise ValueError(f"data.name must be one of {DATASETS}, got {name!r}")


def example_shape(data_config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The shape of one example, known from the config alone (exports and validation need no data)."""
    name = data_config.name
    if name in POINT_DATASETS:
        return (2,)
    channels = {"digits": 1, "stacked_digits": 3}[name]
    return (data_config.resolution, data_config.resolution, channels)
