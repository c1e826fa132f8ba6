"""LMDB folders of encoded images, as LSUN's raw ``*_lmdb`` downloads: one value (WebP or JPEG) per key.

Needs the optional ``lmdb`` package: ``pip install -e .[lmdb]``. Images are named by
their key (decoded as UTF-8) and read in key order, as StyleGAN2-ADA's dataset tool
reads them. The database is opened read-only without a lock file, as there, so a
folder on a read-only file system works.
"""

import itertools
import os
import pathlib

from clr_gan_jax.data.image_stores import ImageStore
from clr_gan_jax.errors import DataError

try:
    import lmdb
except ModuleNotFoundError:
    lmdb = None

_environments = {}  # path -> (pid, environment): LMDB allows one open environment per file and process


def _encode(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _decode(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


class LmdbStore(ImageStore):
    kind = "LMDB folder"

    def __init__(self, path: pathlib.Path):
        if lmdb is None:
            raise DataError(
                f"Reading the LMDB folder {path} needs the lmdb package; install it: pip install -e .[lmdb]"
            )
        super().__init__(path)
        self._environment()  # a broken folder fails here, not on the first read

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path = state["path"]

    @property
    def read_errors(self) -> tuple:
        return (OSError, lmdb.Error)

    def _environment(self):
        pid, environment = _environments.get(self.path, (None, None))
        if pid != os.getpid():
            try:
                environment = lmdb.open(str(self.path), readonly=True, lock=False)
            except lmdb.Error as e:
                raise DataError(f"{self.path} is not a readable LMDB folder ({e}); check the path.") from e
            _environments[self.path] = (os.getpid(), environment)
        return environment

    def image_names(self, limit=None):
        with self._environment().begin() as txn:
            keys = txn.cursor().iternext(keys=True, values=False)
            return [_decode(key) for key in itertools.islice(keys, limit)]

    def _read(self, name):
        with self._environment().begin() as txn:
            value = txn.get(_encode(name))
        if value is None:
            raise FileNotFoundError(f"no key {name!r}")
        return value
