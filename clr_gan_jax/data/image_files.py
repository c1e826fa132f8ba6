"""Image folders and zip archives read directly, without conversion.

A folder tree or a zip (stored or deflated) of PNG, JPEG and WebP files, in sorted
path order. Class labels come from a StyleGAN2-ADA ``dataset.json`` at the root:
``{"labels": [["path/in/archive.png", 3], ...]}`` (``"labels": null`` means none).
Decoding every image on every epoch costs CPU; for large sets convert once with
``python -m clr_gan_jax.data.dataset_tool`` and read the shards.
"""

import json
import os
import pathlib
import threading
import time
import zipfile
from typing import BinaryIO

import numpy as np
from absl import logging

from clr_gan_jax.data.image_transforms import BadImageError, DataError, ImageTransform, load_image, open_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
LABELS_FILE = "dataset.json"


def _is_image_name(name: str) -> bool:
    """Image extension, and not hidden (macOS zips carry ``__MACOSX/._x.png`` resource forks)."""
    parts = name.split("/")
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return name.lower().endswith(IMAGE_EXTENSIONS) and not hidden


class ImageStore:
    """The files of an image folder or zip archive, by '/'-separated relative name.

    Picklable: a zip is opened lazily, once per process and thread.
    """

    def __init__(self, path):
        self.path = pathlib.Path(path).expanduser()
        if self.path.is_dir():
            self._is_zip = False
            names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._is_zip = True
            with zipfile.ZipFile(self.path) as archive:
                names = [info.filename for info in archive.infolist() if not info.is_dir()]
        elif self.path.exists():
            raise DataError(f"{self.path} is neither a folder nor a zip archive; pass a folder of images or a .zip.")
        else:
            raise DataError(f"Image folder or zip {self.path} does not exist; check the path.")
        self._all_names = frozenset(names)
        self.image_names = sorted(n for n in names if _is_image_name(n))
        self._local = threading.local()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_local"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def __contains__(self, name: str) -> bool:
        return name in self._all_names

    def read(self, name: str) -> bytes:
        with self.open(name) as file:
            return file.read()

    def open(self, name: str) -> BinaryIO:
        """A binary file object, for reading only a header."""
        if not self._is_zip:
            return open(self.path / name, "rb")
        archive = getattr(self._local, "archive", None)
        if archive is None or self._local.pid != os.getpid():
            archive = self._local.archive = zipfile.ZipFile(self.path)
            self._local.pid = os.getpid()
        return archive.open(name)


class Labels:
    """Class labels from a StyleGAN2-ADA dataset.json, looked up by image name."""

    def __init__(self, store: ImageStore):
        self._where = f"{store.path}/{LABELS_FILE}"
        self._by_name = {}
        if LABELS_FILE in store:
            try:
                table = json.loads(store.read(LABELS_FILE)).get("labels") or []
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


def square_resolution(store: ImageStore, name: str) -> int:
    """The resolution implied by the first image when none was given: its side, if square."""
    with store.open(name) as file, open_image(file, name) as image:
        width, height = image.size
    if width != height:
        raise DataError(
            f"{name} is {width}x{height}, not square; give a resolution and --transform=center-crop "
            "(transform='center-crop') or center-crop-wide."
        )
    return width


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
    """A grain random-access source over an image folder or zip, decoded on the fly.

    ``source[i] -> {'image': uint8 (H, W, C), 'label': int32}``. At construction
    every image header is checked against the transform, so a wrong size or mode
    fails early, naming the file. With ``skip_bad=True`` every image is decoded
    once instead (slow on big sets) and bad ones are dropped; ``skipped`` lists
    them as (name, reason).

    Args:
      path: folder or .zip.
      resolution: target side, or (width, height) for center-crop-wide; None takes
        the side of the first (square) image.
      transform, resize_filter, channels, crop_size: see `ImageTransform`.
      labels_from: 'dataset.json' to read StyleGAN2-ADA labels when present, or None.
      skip_bad: drop unreadable or unfit images instead of raising.
      max_images: keep only the first N (good) images.
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
        self.store = ImageStore(path)
        names = self.store.image_names
        if not names:
            raise DataError(f"No {'/'.join(IMAGE_EXTENSIONS)} images under {self.store.path}; check the path.")
        if resolution is None:
            if transform != "none":
                raise DataError(f"transform={transform!r} needs a resolution.")
            resolution = square_resolution(self.store, names[0])
        self.transform = ImageTransform.create(
            resolution, transform, resize_filter=resize_filter, channels=channels, crop_size=crop_size
        )
        self.names, self.skipped = self._validate(names, skip_bad, max_images)
        if not self.names:
            raise DataError(f"All {len(names)} images under {self.store.path} are bad; see the log for why.")
        labels = Labels(self.store) if labels_from else None
        self.num_classes = labels.num_classes if labels else 0
        self._labels = np.asarray([labels(name) if labels else 0 for name in self.names], np.int32)

    def _validate(self, names, skip_bad, max_images):
        wanted = len(names) if max_images is None else min(max_images, len(names))
        good, skipped = [], []
        progress = Progress(f"Checking {self.store.path}", wanted)
        for name in names:
            if len(good) == wanted:
                break
            try:
                if skip_bad:
                    load_image(self.store.read(name), name, self.transform)
                else:
                    with self.store.open(name) as file, open_image(file, name) as image:
                        self.transform.check(image.size, image.mode, name)
            except BadImageError as e:
                if not skip_bad:
                    raise
                logging.warning("Skipping %s %s.", name, e.problem)
                skipped.append((name, e.problem))
                continue
            good.append(name)
            progress.update(len(good), len(skipped))
        if skipped:
            logging.warning("Skipped %d bad images under %s.", len(skipped), self.store.path)
        return good, skipped

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.transform.shape

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index) -> dict:
        name = self.names[index]
        return {"image": load_image(self.store.read(name), name, self.transform), "label": self._labels[index]}
