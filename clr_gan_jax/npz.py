"""NumPy .npz weight files: nested dicts of arrays <-> flat {'a/b/c': array} dicts, and reading them safely.

Every reader goes through `read`, which never unpickles and turns every way a file can be
unusable (missing, a single .npy, truncated, not a zip, object arrays) into one UserError line
naming the file and how to get a good one.
"""

import os
import zipfile
from typing import Any

import numpy as np

from clr_gan_jax.errors import UserError


def flatten(tree: dict, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, (*prefix, key)))
        else:
            out["/".join((*prefix, key))] = value
    return out


def unflatten(flat: dict[str, Any]) -> dict:
    tree = {}
    for name, value in flat.items():
        *path, leaf = name.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def read(path: str, what: str, fix: str) -> dict[str, np.ndarray]:
    """All arrays of the .npz at ``path``; errors name the file as ``what`` ('LPIPS weights') and end with ``fix``."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path} not found: {fix}.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise UserError(f"{what} {path} is a single .npy array, not an .npz archive: {fix}.")
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{what} {path} is not a readable .npz archive of arrays ({first_line}): {fix}.") from None


def require_finite(flat: dict[str, np.ndarray], what: str, path: str, fix: str):
    """UserError naming the first array of ``flat`` that holds NaN or Inf."""
    for name, value in flat.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise UserError(f"{what} {path}: {name} holds NaN or Inf values: {fix}.")
