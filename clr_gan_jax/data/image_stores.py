"""Encoded images by name from a folder tree or a zip archive; `lmdb_store` adds LMDB folders.

Image files are those PIL can open, by extension, as StyleGAN2-ADA's dataset tool
takes them; hidden files and macOS resource forks are left out. Order, as there:
folders sorted by path components, zip members by name.
"""

import abc
import os
import pathlib
import threading
import zipfile
import zlib

from PIL import Image

from clr_gan_jax.data.image_transforms import BadImageError

LABELS_FILE = "dataset.json"
# Extensions of the formats PIL can read (StyleGAN2-ADA's tool takes every extension PIL registers).
IMAGE_EXTENSIONS = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def is_image_name(name: str) -> bool:
    """An image extension, and not hidden (macOS zips carry ``__MACOSX/._x.png`` resource forks)."""
    parts = name.split("/")
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not hidden


class ImageStore(abc.ABC):
    """Encoded images by name. Picklable: handles are opened lazily, once per process (and thread)."""

    kind: str  # for messages
    read_errors: tuple = (OSError,)  # what a failed read of one item raises

    def __init__(self, path: pathlib.Path):
        self.path = path

    @abc.abstractmethod
    def image_names(self, limit: int | None = None) -> list[str]:
        """The first ``limit`` (default: all) image names, in the source's order."""

    @abc.abstractmethod
    def _read(self, name: str) -> bytes: ...

    def read(self, name: str) -> bytes:
        """The bytes of ``name``; a read failure (missing file, bad CRC, corrupt entry) is a BadImageError."""
        try:
            return self._read(name)
        except self.read_errors as e:
            raise BadImageError(name, f"cannot be read from the {self.kind} {self.path} ({e})") from e

    def labels_json(self) -> bytes | None:
        """The root dataset.json, if any."""
        return None


class FolderStore(ImageStore):
    kind = "folder"

    def image_names(self, limit=None):
        paths = (p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        return sorted((n for n in paths if is_image_name(n)), key=lambda n: n.split("/"))[:limit]

    def _read(self, name):
        return (self.path / name).read_bytes()

    def labels_json(self):
        path = self.path / LABELS_FILE
        return path.read_bytes() if path.is_file() else None


class ZipStore(ImageStore):
    kind = "zip"
    read_errors = (OSError, EOFError, zipfile.BadZipFile, zlib.error)

    def __init__(self, path):
        super().__init__(path)
        self._local = threading.local()

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])

    def _archive(self) -> zipfile.ZipFile:
        if getattr(self._local, "pid", None) != os.getpid():
            self._local.archive, self._local.pid = (zipfile.ZipFile(self.path), os.getpid())
        return self._local.archive

    def image_names(self, limit=None):
        names = (info.filename for info in self._archive().infolist() if not info.is_dir())
        return sorted(n for n in names if is_image_name(n))[:limit]

    def _read(self, name):
        return self._archive().read(name)

    def labels_json(self):
        return self.read(LABELS_FILE) if LABELS_FILE in self._archive().NameToInfo else None
