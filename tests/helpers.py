"""Helpers shared by test files: small image files, zips (one with a corrupt member) and LMDB folders."""

import io
import struct
import zipfile

import numpy as np
from PIL import Image


def save_image(path, pixels: np.ndarray, **kwargs) -> np.ndarray:
    """Writes ``pixels`` to ``path`` (format from the extension) and returns them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return pixels


def encode_image(pixels: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def random_image(rng: np.random.Generator, height: int, width: int, channels: int = 3) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, np.uint8)


def zip_folder(root, dest, compression=zipfile.ZIP_STORED, extra=()):
    """Zips every file under ``root`` by its relative path (stored, as StyleGAN2-ADA writes), plus ``extra``."""
    with zipfile.ZipFile(dest, "w", compression=compression) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
        for name, data in extra:
            archive.writestr(name, data)
    return dest


def corrupt_zip_member(archive, name: str) -> None:
    """Flips one byte in the middle of the stored data of ``name``: its CRC no longer matches."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(name)
    with open(archive, "r+b") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", file.read(4))
        position = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
        file.seek(position)
        byte = file.read(1)[0]
        file.seek(position)
        file.write(bytes([byte ^ 0xFF]))


def write_lmdb(folder, values: dict[bytes, bytes]) -> None:
    """An LMDB folder (data.mdb, lock.mdb) holding ``values`` by key, as LSUN's downloads."""
    import lmdb

    folder.mkdir(parents=True, exist_ok=True)
    with lmdb.open(str(folder), map_size=1 << 26) as environment, environment.begin(write=True) as txn:
        for key, value in values.items():
            txn.put(key, value)
