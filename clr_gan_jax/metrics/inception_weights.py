"""Loading the FID Inception weights from the converted .npz (no PyTorch needed).

The .npz holds one array per variable under its Flax path ('Mixed_5b/branch1x1/conv/kernel',
'.../bn/mean', 'fc/bias', ...) and the sha256 of the PyTorch file it came from under
'sha256', so that reference statistics can be keyed on the weights.
"""

from typing import NamedTuple

import numpy as np

from clr_gan_jax import npz
from clr_gan_jax.errors import DataError, UserError
from clr_gan_jax.metrics import inception

OFFICIAL_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
OFFICIAL_SHA256_PREFIX = "6726825d"
OFFICIAL_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + OFFICIAL_FILENAME
HASH_KEY = "sha256"
_BATCH_STATS = ("mean", "var")

HOW_TO_GET = (
    f"download {OFFICIAL_FILENAME} from pytorch-fid's GitHub release ({OFFICIAL_URL}) and convert it with "
    f"`python -m clr_gan_jax.metrics.convert_inception --src={OFFICIAL_FILENAME} --dest=inception_fid.npz`"
)


class InceptionWeights(NamedTuple):
    variables: dict  # {'params': ..., 'batch_stats': ...} for InceptionV3.apply
    sha256: str  # of the PyTorch file the weights were converted from


def expected_names() -> dict[str, tuple[int, ...]]:
    """Flat variable name -> shape, for every variable of InceptionV3."""
    shapes = inception.variable_shapes()
    return {
        name: leaf.shape
        for collection in ("params", "batch_stats")
        for name, leaf in npz.flatten(shapes[collection]).items()
    }


def check_names(found: dict[str, tuple[int, ...]], source: str) -> None:
    """Raises naming the missing / unexpected / misshaped variables of ``found``."""
    expected = expected_names()
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    misshaped = sorted(n for n in set(expected) & set(found) if tuple(found[n]) != tuple(expected[n]))
    if missing or unexpected or misshaped:
        raise DataError(
            f"{source} is not the FID Inception-v3: missing {missing[:5]} ({len(missing)} in all), "
            f"unexpected {unexpected[:5]} ({len(unexpected)} in all), wrong shape {misshaped[:5]}."
        )


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    """Flat names -> {'params': nested, 'batch_stats': nested} (BN mean/var are batch stats)."""
    is_stat = lambda name: name.rsplit("/", 1)[-1] in _BATCH_STATS
    return {
        "params": npz.unflatten({k: v for k, v in flat.items() if not is_stat(k)}),
        "batch_stats": npz.unflatten({k: v for k, v in flat.items() if is_stat(k)}),
    }


def save_npz(path: str, flat: dict[str, np.ndarray], sha256: str) -> None:
    np.savez(path, **flat, **{HASH_KEY: np.array(sha256)})


def load_inception_params(path: str) -> InceptionWeights:
    """Reads a converted .npz; raises a one-line error saying how to get it if it is missing."""
    flat = npz.read(path, "Inception weights", HOW_TO_GET)
    if HASH_KEY not in flat:
        raise UserError(f"{path} has no '{HASH_KEY}' entry, so convert_inception did not write it; {HOW_TO_GET}.")
    sha256 = str(flat.pop(HASH_KEY))
    check_names({k: v.shape for k, v in flat.items()}, path)
    return InceptionWeights(unflatten(flat), sha256)
