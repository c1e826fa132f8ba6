"""Official StyleGAN2-ADA / CLR-GAN PyTorch weights -> variables of this package's Flax modules.

Write the state dicts once with the official code (in a checkout of NVlabs/stylegan2-ada-pytorch or
Petecheco/CLR-GAN, whose ``legacy`` module reads the network pickles; the init kwargs are the constructor
arguments to mirror)::

    import json, torch, dnnlib, legacy
    with dnnlib.util.open_url("network-snapshot.pkl") as f:
        data = legacy.load_network_pkl(f)
    torch.save({name: data[name].state_dict() for name in ("G", "D", "G_ema")}, "weights.pth")
    json.dump({name: data[name].init_kwargs for name in ("G", "D")}, open("kwargs.json", "w"))

Then, here::

    kwargs = json.load(open("kwargs.json"))
    G = generator_from_official_kwargs(kwargs["G"])          # or Generator(...) by hand
    D = discriminator_from_official_kwargs(kwargs["D"])
    state_dicts = load_state_dicts("weights.pth")           # needs torch (CPU build), imported only here
    g_ema = generator_variables(G, state_dicts["G_ema"])    # {"params", "w_avg", "noise_const"}
    d = discriminator_variables(D, state_dicts["D"])        # {"params"}; D with heads: initial=D.init(...)

Layouts: dense weights (out, in) -> kernel (in, out); conv weights OIHW -> HWIO (not flipped: up=2 layers flip at
run time as the official code does); the 4x4 const (C, H, W) -> (H, W, C); everything else as is. The fixed
``resample_filter`` buffers are checked against the module's filter rather than imported.
"""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.errors import DataError, UserError
from clr_gan_jax.models.stylegan2 import ops
from clr_gan_jax.models.stylegan2.discriminator import Discriminator
from clr_gan_jax.models.stylegan2.generator import Generator

# Flax module names that differ from the official attribute names (Generator.mapping/.synthesis are methods here;
# GLeaD's decoder blocks and projections are attributes of the official D itself, grouped in `decoder` here).
_MODULE_NAMES = {"mapping_network": "mapping", "synthesis_network": "synthesis", "decoder": None}
_FILTER_BUFFER = "resample_filter"


def _official_layout(leaf: str, shape: tuple[int, ...]):
    """(official name, official shape, function official array -> flax array) of a flax leaf."""
    if leaf == "kernel" and len(shape) == 2:
        return "weight", shape[::-1], lambda a: a.T
    if leaf == "kernel" and len(shape) == 4:
        kh, kw, cin, cout = shape
        return "weight", (cout, cin, kh, kw), lambda a: a.transpose(2, 3, 1, 0)
    if leaf == "const":
        h, w, c = shape
        return "const", (c, h, w), lambda a: a.transpose(1, 2, 0)
    return leaf, tuple(shape), lambda a: a


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, np.float32)


def state_dict_to_variables(state_dict, target, *, resample_filter=None, skip=lambda path: False):
    """Official state dict -> a variables tree with the structure, shapes and dtypes of ``target``.

    ``target`` is the module's variables tree or its `jax.eval_shape`; leaves for which ``skip(path)`` is true
    (a tuple of names, collection first) are kept from ``target``. Every other leaf must come from the state dict
    with a matching shape; every state-dict entry must be used, except ``resample_filter`` buffers, which must
    equal ``setup_filter(resample_filter)``. Violations raise `UserError` naming the tensor.
    """
    state_dict = {key: _as_numpy(value) for key, value in state_dict.items()}
    used = set()

    def convert(path, leaf):
        names = tuple(getattr(p, "key", p) for p in path)
        if skip(names):
            return leaf
        official, official_shape, to_flax = _official_layout(names[-1], leaf.shape)
        modules = [_MODULE_NAMES.get(n, n) for n in names[1:-1]]
        key = ".".join([m for m in modules if m is not None] + [official])
        if key not in state_dict:
            raise UserError(f"official weights: tensor {key!r} is missing; the model expects shape {official_shape}")
        value = state_dict[key]
        if value.shape != official_shape:
            raise UserError(
                f"official weights: tensor {key!r} has shape {value.shape}, the model expects {official_shape}; "
                "build the model with the official run's arguments"
            )
        used.add(key)
        return jnp.asarray(to_flax(value), leaf.dtype)

    variables = jax.tree_util.tree_map_with_path(convert, target)
    expected_filter = ops.setup_filter(resample_filter)
    for key in sorted(set(state_dict) - used):
        if key.split(".")[-1] != _FILTER_BUFFER:
            raise UserError(f"official weights: unexpected tensor {key!r} of shape {state_dict[key].shape}")
        if state_dict[key].shape != expected_filter.shape or not np.allclose(state_dict[key], expected_filter):
            raise UserError(
                f"official weights: {key!r} is not the model's resample filter {tuple(resample_filter)}; "
                "build the model with the official run's resample_filter"
            )
    return variables


def _example_labels(c_dim: int):
    return jnp.zeros((1,), jnp.int32) if c_dim else None


def generator_variables(generator: Generator, state_dict) -> dict:
    """``G.state_dict()`` or ``G_ema.state_dict()`` of an official Generator -> {"params", "w_avg", "noise_const"}."""
    z = jnp.zeros((1, generator.z_dim))
    target = jax.eval_shape(
        lambda: generator.init(jax.random.key(0), z, _example_labels(generator.c_dim), noise_mode="const")
    )
    return state_dict_to_variables(state_dict, target, resample_filter=generator.resample_filter)


def discriminator_variables(discriminator: Discriminator, state_dict, *, initial=None) -> dict:
    """``D.state_dict()`` of an official (or CLR-GAN) Discriminator -> {"params"}.

    Extra ``heads`` are not part of the official D: they are taken from ``initial`` (variables of the same D, e.g.
    from ``D.init``), which a D with heads requires.
    """
    if discriminator.heads and initial is None:
        raise UserError("the discriminator has heads the official weights lack: pass initial=D.init(...) variables")
    images = jnp.zeros((1, discriminator.img_resolution, discriminator.img_resolution, discriminator.img_channels))
    target = initial
    if target is None:
        labels = _example_labels(discriminator.c_dim)
        target = jax.eval_shape(lambda: discriminator.init(jax.random.key(0), images, labels))
    return state_dict_to_variables(
        state_dict,
        target,
        resample_filter=discriminator.resample_filter,
        skip=lambda path: path[1].startswith("head_"),
    )


def load_state_dicts(path: str) -> dict[str, dict[str, np.ndarray]]:
    """A ``.pth`` file holding {"G": ..., "D": ..., "G_ema": ...} state dicts -> the same as NumPy arrays.

    Read with ``torch.load(weights_only=True)``: tensors and plain containers only, nothing is unpickled.
    """
    if not os.path.isfile(path):
        raise DataError(f"official weights: no file {path!r}")
    try:
        import torch
    except ImportError:
        raise UserError(
            "reading official .pth weights needs PyTorch: pip install torch (the CPU build is enough)"
        ) from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise DataError(f"official weights: {path!r} is not a readable torch file ({type(error).__name__})") from None
    if not isinstance(data, dict) or not all(
        isinstance(sd, dict) and all(hasattr(t, "numpy") for t in sd.values()) for sd in data.values()
    ):
        raise DataError(
            f"official weights: {path!r} must hold a dict of state dicts such as "
            '{"G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict()}'
        )
    return {name: {k: _as_numpy(t) for k, t in sd.items()} for name, sd in data.items()}


_ANY = object()  # an official argument with no effect on the numerics (memory format, Freeze-D)


def _take(kwargs: dict, renames: dict[str, str], fixed: dict, what: str) -> dict:
    """Official keyword arguments -> ours, renamed by ``renames``.

    A key in ``fixed`` is accepted only with the value given there (or any value for ``_ANY``) and dropped;
    any other key is an error.
    """
    out = {}
    for key, value in kwargs.items():
        if key in renames:
            out[renames[key]] = tuple(value) if isinstance(value, list) else value
        elif key not in fixed:
            raise UserError(f"official {what} argument {key!r} is not supported by this port")
        elif fixed[key] is not _ANY and value != fixed[key]:
            raise UserError(f"official {what} argument {key}={value!r} is not supported (only {fixed[key]!r})")
    return out


_MAPPING_FIXED = {"embed_features": None, "layer_features": None, "activation": "lrelu"}


def generator_from_official_kwargs(init_kwargs: dict, **overrides) -> Generator:
    """A Generator built with the constructor arguments of an official one (``G.init_kwargs``)."""
    nested = ("mapping_kwargs", "synthesis_kwargs")
    top = {k: k for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    kwargs = _take({k: v for k, v in init_kwargs.items() if k not in nested}, top, {"class_name": _ANY}, "Generator")
    mapping = {"num_layers": "mapping_layers", "lr_multiplier": "mapping_lr_multiplier", "w_avg_beta": "w_avg_beta"}
    kwargs |= _take(init_kwargs.get("mapping_kwargs", {}), mapping, _MAPPING_FIXED, "mapping")
    synthesis = ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture")
    synthesis += ("resample_filter", "use_noise")
    fixed = {"fp16_channels_last": _ANY, "activation": "lrelu"}
    kwargs |= _take(init_kwargs.get("synthesis_kwargs", {}), {k: k for k in synthesis}, fixed, "synthesis")
    return Generator(**(kwargs | overrides))


def discriminator_from_official_kwargs(init_kwargs: dict, **overrides) -> Discriminator:
    """A Discriminator built with the constructor arguments of an official one (``D.init_kwargs``).

    Freeze-D (``block_kwargs.freeze_layers``) is a training choice here (mask the optimizer), not a model argument.
    """
    nested = ("block_kwargs", "mapping_kwargs", "epilogue_kwargs")
    top = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max")
    top += ("num_fp16_res", "conv_clamp", "cmap_dim")
    kwargs = _take(
        {k: v for k, v in init_kwargs.items() if k not in nested},
        {k: k for k in top},
        {"class_name": _ANY},
        "Discriminator",
    )
    block_fixed = {"fp16_channels_last": _ANY, "freeze_layers": _ANY, "activation": "lrelu"}
    kwargs |= _take(init_kwargs.get("block_kwargs", {}), {"resample_filter": "resample_filter"}, block_fixed, "block")
    mapping = {"num_layers": "mapping_layers", "lr_multiplier": "mapping_lr_multiplier"}
    kwargs |= _take(init_kwargs.get("mapping_kwargs", {}), mapping, _MAPPING_FIXED, "D mapping")
    epilogue = {"mbstd_group_size": "mbstd_group_size", "mbstd_num_channels": "mbstd_num_channels"}
    kwargs |= _take(init_kwargs.get("epilogue_kwargs", {}), epilogue, {"activation": "lrelu"}, "epilogue")
    return Discriminator(**(kwargs | overrides))
