"""Image folders, zip archives and LSUN LMDB folders, read directly without conversion.

`open_store` picks the reader from the path: a folder tree of image files, a zip
(stored or deflated; StyleGAN2-ADA's dataset zips are one), or an LMDB folder
(``data.mdb`` inside, as LSUN's ``*_lmdb``). See `image_stores` and `lmdb_store`
for which files count as images and their order.

Class labels come from a StyleGAN2-ADA ``dataset.json`` at the root:
``{"labels": [["path/in/archive.png", 3], ...]}`` (``"labels": null`` means none).
Decoding every image on every epoch costs CPU; for large sets convert once with
``python -m clr_gan_jax.data.dataset_tool`` and read the shards.
"""

import json
import pathlib
import time
import zipfile

import numpy as np
from absl import logging

from clr_gan_jax.data.image_stores import LABELS_FILE, FolderStore, ImageStore, ZipStore
from clr_gan_jax.data.image_transforms import BadImageError, DataError, ImageTransform, load_image, open_image

SKIP_BAD_FIX = "remove it, or replace bad images by the next good one with --config.data.skip_bad=True"


def open_store(path) -> ImageStore:
    """The store for a folder, a zip, or an LMDB folder (holding data.mdb) at ``path``."""
    path = pathlib.Path(path).expanduser()
    if path.is_dir() and (path / "data.mdb").is_file():
        from clr_gan_jax.data.lmdb_store import LmdbStore

        return LmdbStore(path)
    if path.is_dir():
        if path.name.endswith("_lmdb"):
            raise DataError(f"{path} is named like an LSUN LMDB folder but holds no data.mdb; check the path.")
        return FolderStore(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return ZipStore(path)
    if path.exists():
        raise DataError(f"{path} is neither a folder, a zip, nor an LMDB folder; pass one of those.")
    raise DataError(f"Image folder, zip or LMDB folder {path} does not exist; check the path.")


class Labels:
    """Class labels from a StyleGAN2-ADA dataset.json, looked up by image name."""

    def __init__(self, store: ImageStore):
        self._where = f"{store.path}/{LABELS_FILE}"
        self._by_name = {}
        try:
            text = store.labels_json()
        except BadImageError as e:
            raise DataError(f"{self._where} cannot be read ({e.problem}); fix it or read without labels.") from e
        if text is not None:
            try:
                table = json.loads(text).get("labels") or []
                self._by_name = {entry[0]: entry[1] for entry in table}
            except (ValueError, AttributeError, TypeError, IndexError, KeyError) as e:
                raise DataError(
                    f"{self._where} is not a StyleGAN2-ADA labels file ({e}); fix it or read without labels "
                    "(labels_from=None, --nolabels)."
                ) from e
        bad = [(name, label) for name, label in self._by_name.items() if not isinstance(label, int) or label < 0]
        if bad:
            name, label = bad[0]
            raise DataError(f"{name} has label {label!r} in {self._where}; only class indices (ints >= 0) work.")
        # Counted over the whole table, so that max_images or skipped files keep the label space.
        self.num_classes = 1 + max(self._by_name.values()) if self._by_name else 0

    def __call__(self, name: str) -> int:
        """The label of ``name``; 0 when there are no labels."""
        if not self.num_classes:
            return 0
        if name not in self._by_name:
            raise DataError(
                f"{name} has no label in {self._where}; add one or read without labels (labels_from=None, --nolabels)."
            )
        return self._by_name[name]


def first_image_size(store: ImageStore, names: list[str], skip_bad: bool = False) -> int:
    """The side of the first (readable, with ``skip_bad``) image, which must be square: the size when none is given."""
    for name in names:
        try:
            with open_image(store.read(name), name) as image:
                width, height = image.size
        except BadImageError:
            if skip_bad:
                continue
            raise
        if width != height:
            raise DataError(
                f"{name} is {width}x{height}, not square; give an output size (--width and --height, or a resolution)"
                " and a transform that makes it square."
            )
        return width
    raise DataError(f"No image under {store.path} can be read.")


class Progress:
    """Logs ``done/total`` with a rate every few seconds."""

    def __init__(self, what: str, total: int, every_s: float = 5.0):
        self.what, self.total, self.every_s = what, total, every_s
        self.start = self.last = time.monotonic()

    def update(self, done: int, skipped: int = 0, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every_s:
            self.last = now
            rate = done / max(now - self.start, 1e-9)
            extra = f", {skipped} skipped" if skipped else ""
            logging.info("%s: %d/%d images%s, %.1f images/s", self.what, done, self.total, extra, rate)


class ImageFolderSource:
    """A grain random-access source over an image folder, zip or LMDB folder, decoded on the fly.

    ``source[i] -> {'image': uint8 (H, W, C), 'label': int32}``. Only the first
    image is read at construction (as StyleGAN2-ADA's loader does); the dataset
    tool checks every image. A bad item (unreadable or corrupt file, bad zip CRC,
    16-bit or float pixels, too small for the crop) raises a one-line
    `BadImageError` naming it, unless ``skip_bad``: then it is logged once per
    process and replaced by the next good item (cyclically), with that item's
    label. The replacement depends on the index only, so a resumed run reads the
    same data. An image of the wrong size under transform='none' is an error either way.

    Args:
      path: folder, .zip, or LMDB folder.
      resolution: target side, or (width, height) for center-crop-wide; None takes
        the side of the first (square) image.
      transform, resize_filter, channels, crop_size: see `ImageTransform`.
      labels_from: 'dataset.json' to read StyleGAN2-ADA labels when present, or None.
      skip_bad: replace bad items by the next good one instead of raising.
      max_images: keep only the first N images.
    """

    def __init__(
        self,
        path,
        resolution=None,
        transform: str = "none",
        *,
        resize_filter: str = "lanczos",
        channels: int = 3,
        crop_size: int | None = None,
        labels_from: str | None = LABELS_FILE,
        skip_bad: bool = False,
        max_images: int | None = None,
    ):
        if labels_from not in (LABELS_FILE, None):
            raise DataError(f"labels_from={labels_from!r}; use {LABELS_FILE!r} or None.")
        if max_images is not None and max_images < 1:
            raise DataError(f"max_images={max_images} must be at least 1.")
        self.store = open_store(path)
        self.names = self.store.image_names(max_images)
        if not self.names:
            raise DataError(f"No images under {self.store.path}; check the path.")
        if resolution is None:
            if transform != "none":
                raise DataError(f"transform={transform!r} needs a resolution.")
            resolution = first_image_size(self.store, self.names, skip_bad)
        self.transform = ImageTransform.create(
            resolution, transform, resize_filter=resize_filter, channels=channels, crop_size=crop_size
        )
        self.skip_bad = skip_bad
        labels = Labels(self.store) if labels_from else None
        self.num_classes = labels.num_classes if labels else 0
        self._labels = np.asarray([labels(name) if labels else 0 for name in self.names], np.int32)
        self._bad = {}  # index -> problem, of the bad items this process has met

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.transform.shape

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index) -> dict:
        for step in range(len(self.names)):
            i = (int(index) + step) % len(self.names)
            if i in self._bad:
                continue
            name = self.names[i]
            try:
                return {"image": load_image(self.store.read(name), name, self.transform), "label": self._labels[i]}
            except BadImageError as e:
                if not self.skip_bad:
                    raise e.with_fix(SKIP_BAD_FIX) from None
                self._bad[i] = e.problem
                logging.warning("Bad image %s %s; reading the next good image in its place.", name, e.problem)
        raise DataError(f"All {len(self.names)} images under {self.store.path} are bad; see the log for why.")
