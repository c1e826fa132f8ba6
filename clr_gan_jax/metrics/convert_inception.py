r"""Converts pytorch-fid's Inception weights (.pth) into the .npz that the JAX port loads.

    python -m clr_gan_jax.metrics.convert_inception \
        --src=pt_inception-2015-12-05-6726825d.pth --dest=inception_fid.npz

PyTorch is needed here only. A file whose sha256 does not start with 6726825d (the
official one) is refused unless --allow_unofficial is given.
"""

import hashlib
import os

import numpy as np
from absl import app, flags

from clr_gan_jax.metrics import inception_weights

# torch BatchNorm / Linear names -> Flax leaf names.
_LEAF_NAMES = {"running_mean": "mean", "running_var": "var", "bias": "bias"}


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torch_to_flax(state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Renames and transposes a torch state dict (OIHW convs, (out, in) fc) to the port's NHWC layout."""
    flat = {}
    for name, value in state_dict.items():
        *path, leaf = name.split(".")
        if leaf == "num_batches_tracked":
            continue
        module = path[-1] if path else ""
        if leaf == "weight" and module == "conv":
            flat["/".join(path + ["kernel"])] = value.transpose(2, 3, 1, 0)
        elif leaf == "weight" and module == "fc":
            flat["fc/kernel"] = value.T
        elif leaf == "weight":
            flat["/".join(path + ["scale"])] = value
        else:
            flat["/".join(path + [_LEAF_NAMES.get(leaf, leaf)])] = value
    return {name: np.ascontiguousarray(value, np.float32) for name, value in flat.items()}


def convert(src: str, dest: str, allow_unofficial: bool = False) -> str:
    """Converts ``src`` (.pth) to ``dest`` (.npz); returns the sha256 of ``src``."""
    import torch  # Only the conversion needs PyTorch.

    if not os.path.exists(src):
        raise FileNotFoundError(f"{src} not found: {inception_weights.HOW_TO_GET}.")
    sha256 = file_sha256(src)
    if not sha256.startswith(inception_weights.OFFICIAL_SHA256_PREFIX) and not allow_unofficial:
        raise ValueError(
            f"{src} has sha256 {sha256[:8]}..., not the official {inception_weights.OFFICIAL_SHA256_PREFIX}...; "
            "statistics from it are not comparable with published FIDs. Pass --allow_unofficial to convert it anyway."
        )
    state_dict = torch.load(src, map_location="cpu", weights_only=True)
    flat = torch_to_flax({name: tensor.numpy() for name, tensor in state_dict.items()})
    inception_weights.check_names({name: value.shape for name, value in flat.items()}, src)
    inception_weights.save_npz(dest, flat, sha256)
    return sha256


def define_flags():
    """The command line's flags; defined only when run as a program, so importing the module defines none."""
    flags.DEFINE_string("src", inception_weights.OFFICIAL_FILENAME, "PyTorch state dict of the FID Inception.")
    flags.DEFINE_string("dest", "inception_fid.npz", "Where to write the converted weights.")
    flags.DEFINE_bool(
        "allow_unofficial", False, "Convert a file whose sha256 is not the official one (e.g. random test weights)."
    )


def main(argv):
    del argv
    f = flags.FLAGS
    try:
        sha256 = convert(f.src, f.dest, f.allow_unofficial)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"convert_inception: {e}") from None
    print(f"Wrote {f.dest} (weights sha256 {sha256}).")


if __name__ == "__main__":
    define_flags()
    app.run(main)
