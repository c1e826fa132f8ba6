"""Image datasets converted by the dataset tool: array_record shards plus dataset.json.

Each record holds the raw uint8 pixels of one image, C-order (H, W, C); the shape,
labels and shard list live in dataset.json. Why raw and not PNG: see dataset_tool.
"""

import json
import pathlib

import grain
import numpy as np

from clr_gan_jax.data.image_transforms import DataError

METADATA_FILE = "dataset.json"
FORMAT = "clr_gan_jax.array_record_images.v1"
RECORD_LAYOUT = "raw uint8 pixels, C-order (height, width, channels)"
# group_size:1 makes each record its own chunk, which grain's random access requires.
WRITER_OPTIONS = "group_size:1,uncompressed"


def shard_name(index: int, count: int) -> str:
    return f"images.array_record-{index:05d}-of-{count:05d}"


def read_metadata(path) -> dict:
    """dataset.json of a converted dataset, checked to be ours."""
    meta_path = pathlib.Path(path).expanduser() / METADATA_FILE
    hint = "convert images with `python -m clr_gan_jax.data.dataset_tool --source=<folder|zip> --dest=<dir>`"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} not found: {path} is not a converted dataset; {hint}.")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as e:
        raise DataError(f"{meta_path} is not valid JSON ({e}); {hint}.") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(
            f"{meta_path} is not a clr_gan_jax shard index (a StyleGAN2-ADA folder or zip is read with "
            f"ImageFolderSource); {hint}."
        )
    return meta


class ArrayRecordImageSource:
    """A grain random-access source over the shards the dataset tool wrote.

    ``source[i] -> {'image': uint8 (H, W, C), 'label': int32}``; images are
    read-only views of the record bytes. Picklable (shards are opened lazily).
    """

    def __init__(self, path):
        self.path = pathlib.Path(path).expanduser()
        meta = read_metadata(self.path)
        self.shape = tuple(meta["shape"])
        self.num_classes = int(meta["num_classes"])
        files = [self.path / shard["file"] for shard in meta["shards"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DataError(
                f"Shards listed in {self.path / METADATA_FILE} are missing: {', '.join(missing)}; convert again."
            )
        self._records = grain.sources.ArrayRecordDataSource([str(f) for f in files])
        if len(self._records) != meta["count"]:
            raise DataError(
                f"{self.path} holds {len(self._records)} records but {METADATA_FILE} says {meta['count']}; "
                "convert again."
            )
        labels = meta.get("labels")
        self._labels = np.asarray(labels if labels is not None else np.zeros(meta["count"]), np.int32)
        self._record_size = int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index) -> dict:
        record = self._records[index]
        if len(record) != self._record_size:
            raise DataError(
                f"Record {index} in {self.path} has {len(record)} bytes, not {self._record_size}; convert again."
            )
        return {"image": np.frombuffer(record, np.uint8).reshape(self.shape), "label": self._labels[index]}
