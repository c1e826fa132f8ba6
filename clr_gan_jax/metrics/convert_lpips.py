r"""Converts LPIPS v0.1 (AlexNet) from its two PyTorch files into the .npz that ``lpips.load_lpips`` reads.

    python -m clr_gan_jax.metrics.convert_lpips \
        --alexnet=alexnet-owt-7be5be79.pth --lin=alex.pth --dest=lpips_alex.npz

The two inputs:

* ``--alexnet``: torchvision's ImageNet AlexNet state dict (``AlexNet_Weights.IMAGENET1K_V1``),
  https://download.pytorch.org/models/alexnet-owt-7be5be79.pth (torchvision also caches it in
  ``~/.cache/torch/hub/checkpoints/``). Only ``features.{0,3,6,8,10}.{weight,bias}`` are used; the
  ``classifier.*`` tensors are ignored.
* ``--lin``: the LPIPS v0.1 linear layers for AlexNet, ``lpips/weights/v0.1/alex.pth``, a data file
  of the ``lpips`` PyPI package (``pip download lpips==0.1.4 --no-deps`` and unzip the wheel; sha256
  df73285e...) and of github.com/richzhang/PerceptualSimilarity. It holds ``lin{0..4}.model.1.weight``
  of shape (1, C, 1, 1). The file is read directly: the ``lpips`` package itself needs torchvision.

Both are read with ``torch.load(weights_only=True)``; PyTorch is needed here only.
"""

import os
import pickle

import numpy as np
from absl import app, flags

from clr_gan_jax.errors import UserError
from clr_gan_jax.metrics import lpips

ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
LIN_SOURCE = "lpips/weights/v0.1/alex.pth inside the lpips wheel (pip download lpips==0.1.4 --no-deps, then unzip)"
# torchvision's AlexNet().features index of each convolution.
_FEATURE_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}


def _load_state_dict(path: str, flag: str, how_to_get: str) -> dict[str, np.ndarray]:
    import torch  # Only the conversion needs PyTorch.

    if not os.path.isfile(path):
        raise UserError(f"--{flag}={path} not found: get it from {how_to_get}.")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise UserError(f"--{flag}={path} is not a PyTorch state dict ({e}); get it from {how_to_get}.") from None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise UserError(f"--{flag}={path} is not a state dict of tensors: get it from {how_to_get}.")
    return {name: tensor.detach().float().numpy() for name, tensor in state_dict.items()}


def _take(state_dict: dict[str, np.ndarray], name: str, shape: tuple[int, ...], source: str) -> np.ndarray:
    if name not in state_dict:
        raise UserError(f"{source} has no tensor {name!r} (it has {sorted(state_dict)[:6]}...): is it the right file?")
    if state_dict[name].shape != shape:
        raise UserError(f"{source}: tensor {name!r} has shape {state_dict[name].shape}, expected {shape}.")
    return state_dict[name]


def _refuse_unexpected(state_dict: dict, used: set[str], ignored_prefix: str | None, source: str) -> None:
    unexpected = sorted(n for n in set(state_dict) - used if not (ignored_prefix and n.startswith(ignored_prefix)))
    if unexpected:
        raise UserError(
            f"{source} has unexpected tensors {unexpected[:5]} ({len(unexpected)} in all): is it the right file?"
        )


def alexnet_to_flax(state_dict: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """torchvision AlexNet tensors (OIHW kernels) -> {'alexnet/convK/kernel' (HWIO), 'alexnet/convK/bias'}."""
    shapes = lpips.variable_shapes()
    flat, used = {}, set()
    for conv, index in _FEATURE_INDEX.items():
        kh, kw, cin, cout = shapes[f"alexnet/{conv}/kernel"]
        kernel = _take(state_dict, f"features.{index}.weight", (cout, cin, kh, kw), source)
        flat[f"alexnet/{conv}/kernel"] = kernel.transpose(2, 3, 1, 0)
        flat[f"alexnet/{conv}/bias"] = _take(state_dict, f"features.{index}.bias", (cout,), source)
        used |= {f"features.{index}.weight", f"features.{index}.bias"}
    _refuse_unexpected(state_dict, used, "classifier.", source)
    return flat


def lin_to_flax(state_dict: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """LPIPS v0.1 ``lin{i}.model.1.weight`` (1, C, 1, 1) -> {'lin{i+1}': (C,)}."""
    flat, used = {}, set()
    for i, channels in enumerate(lpips.CHANNELS):
        name = f"lin{i}.model.1.weight"
        flat[f"lin{i + 1}"] = _take(state_dict, name, (1, channels, 1, 1), source).reshape(channels)
        used.add(name)
    _refuse_unexpected(state_dict, used, None, source)
    return flat


def convert(alexnet: str, lin: str, dest: str) -> None:
    """Writes ``dest`` (.npz, Flax parameter paths as keys) from the two PyTorch files."""
    flat = {
        **alexnet_to_flax(_load_state_dict(alexnet, "alexnet", ALEXNET_URL), alexnet),
        **lin_to_flax(_load_state_dict(lin, "lin", LIN_SOURCE), lin),
    }
    try:
        with open(dest, "wb") as f:
            np.savez(f, **{name: np.ascontiguousarray(value, np.float32) for name, value in flat.items()})
    except OSError as e:
        raise UserError(f"cannot write --dest={dest} ({e}): pick a writable path.") from None


def define_flags():
    """The command line's flags; defined only when run as a program, so importing the module defines none."""
    flags.DEFINE_string("alexnet", "alexnet-owt-7be5be79.pth", "torchvision's AlexNet state dict.")
    flags.DEFINE_string("lin", "alex.pth", "LPIPS v0.1 linear-layer weights for AlexNet.")
    flags.DEFINE_string("dest", "lpips_alex.npz", "Where to write the converted weights.")


def main(argv):
    del argv
    f = flags.FLAGS
    try:
        convert(f.alexnet, f.lin, f.dest)
    except UserError as e:
        raise SystemExit(f"convert_lpips: {e}") from None
    print(f"Wrote {f.dest}.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
