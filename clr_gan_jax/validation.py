"""Checks of everything a user can get wrong, each failing with one line that names the fix."""

import math
import os

import ml_collections

from clr_gan_jax.errors import UserError


def _require(ok: bool, message: str):
    if not ok:
        raise UserError(message)


def validate_config(config: ml_collections.ConfigDict, num_devices: int):
    """Raises UserError for values that cannot train, before anything is built or written."""
    from clr_gan_jax import data, losses, models

    t, o = config.train, config.optim
    _require(data.is_known(config.data.name), f"data.name must be one of {data.DATASETS}, got {config.data.name!r}")
    if config.data.name in ("images", "shards"):
        _require(bool(config.data.path), f"data.path must name the {config.data.name} to read (data.name={config.data.name!r})")
    if config.data.name == "shards":
        side = data.example_shape(config.data)[0]
        _require(
            side == config.data.resolution,
            f"data.resolution={config.data.resolution} but the shards in {config.data.path} are {side} px: "
            f"set --config.data.resolution={side}",
        )
    if config.data.name not in data.POINT_DATASETS:
        r = config.data.resolution
        _require(
            isinstance(r, int) and r >= 8 and 2 ** int(math.log2(r)) == r,
            f"data.resolution must be a power of two >= 8, got {r!r}",
        )
    _require(config.model.arch in models.ARCHITECTURES, f"model.arch must be one of {models.ARCHITECTURES}, got {config.model.arch!r}")
    is_points = config.data.name in data.POINT_DATASETS
    _require(
        (config.model.arch == "mlp") == is_points,
        f"model.arch={config.model.arch!r} does not fit data.name={config.data.name!r}: use 'mlp' for 2-D points, 'dcgan' for images",
    )
    _require(
        config.model.matmul_dtype in models.MATMUL_DTYPES,
        f"model.matmul_dtype must be one of {models.MATMUL_DTYPES}, got {config.model.matmul_dtype!r}",
    )
    _require(
        config.model.arch == "dcgan" or config.model.matmul_dtype == "float32",
        "model.matmul_dtype=bfloat16 is for arch=dcgan; the mlp's small products gain nothing from it",
    )
    _require(config.model.z_dim >= 1, f"model.z_dim must be >= 1, got {config.model.z_dim}")
    _require(
        config.loss.adversarial in losses.ADVERSARIAL,
        f"loss.adversarial must be one of {losses.ADVERSARIAL}, got {config.loss.adversarial!r}",
    )
    _require(config.loss.r1_gamma >= 0, f"loss.r1_gamma must be >= 0, got {config.loss.r1_gamma}")
    _require(config.clr.distance in losses.DISTANCES, f"clr.distance must be one of {losses.DISTANCES}, got {config.clr.distance!r}")
    _require(config.clr.w_clr >= 0 and config.clr.w_rec >= 0, "clr.w_clr and clr.w_rec must be >= 0")
    for name in ("g_lr", "d_lr"):
        _require(o[name] > 0, f"optim.{name} must be > 0, got {o[name]}")
    _require(0 <= o.b1 < 1 and 0 <= o.b2 < 1, f"optim.b1 and optim.b2 must be in [0, 1), got {o.b1}, {o.b2}")
    for name in ("steps", "batch_size", "n_critic", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "num_samples"):
        _require(isinstance(t[name], int) and t[name] >= 1, f"train.{name} must be an integer >= 1, got {t[name]!r}")
    _require(
        t.batch_size % num_devices == 0,
        f"train.batch_size={t.batch_size} is not divisible by the {num_devices} devices: use a multiple of {num_devices}",
    )
    _require(0 <= t.ema_decay < 1, f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    _validate_eval(config, num_devices)


def _validate_eval(config: ml_collections.ConfigDict, num_devices: int):
    from clr_gan_jax import data, evaluate
    from clr_gan_jax.metrics import evaluator, inception, inception_weights

    e = config.eval
    for name in ("every", "num_samples", "batch_size"):
        _require(isinstance(e[name], int) and e[name] >= 1, f"eval.{name} must be an integer >= 1, got {e[name]!r}")
    _require(
        e.batch_size % num_devices == 0,
        f"eval.batch_size={e.batch_size} is not divisible by the {num_devices} devices: use a multiple of {num_devices}",
    )
    _require(e.num_real is None or e.num_real >= 2, f"eval.num_real must be None (all) or >= 2, got {e.num_real!r}")
    _require(e.resize_mode in inception.RESIZE_MODES, f"eval.resize_mode must be one of {inception.RESIZE_MODES}, got {e.resize_mode!r}")
    names = evaluate.metric_names(e)
    unknown = [name for name in names if name not in evaluator.METRICS]
    _require(not unknown, f"eval.metrics: unknown metric {', '.join(map(repr, unknown))}; choose from {', '.join(evaluator.METRICS)}")
    fits = {"mixture": data.POINT_DATASETS, "digits": ("digits",), "stacked_digits": ("stacked_digits",)}
    for name in names:
        if name in fits:
            _require(config.data.name in fits[name], f"eval.metrics: {name!r} needs data.name in {fits[name]}, got {config.data.name!r}")
        else:
            _require(config.data.name not in data.POINT_DATASETS, f"eval.metrics: {name!r} needs images, not 2-D points ({config.data.name!r})")
    if set(names) & set(evaluator.INCEPTION_METRICS):
        path = e.inception_weights
        _require(
            bool(path) and os.path.exists(os.path.expanduser(path)),
            f"eval.metrics={','.join(names)} needs the FID Inception weights, but eval.inception_weights={path!r} "
            f"does not exist: {inception_weights.HOW_TO_GET}, then pass --config.eval.inception_weights=inception_fid.npz",
        )
    if e.best_metric:
        rankable = evaluate.LOWER_IS_BETTER + evaluate.HIGHER_IS_BETTER
        keys = [key for name in names for key in evaluate.RESULT_KEYS[name] if key in rankable]
        _require(bool(names), f"eval.best_metric={e.best_metric!r} needs eval.metrics, e.g. --config.eval.metrics=fid; or set it to ''")
        _require(
            e.best_metric in keys,
            f"eval.best_metric={e.best_metric!r} is not a result of eval.metrics={','.join(names)!r}; use one of {keys} or ''",
        )


def validate_workdir(workdir: str):
    """The workdir must be creatable and writable; nothing is written if it is not."""
    _require(bool(workdir), "--workdir is required")
    path = os.path.abspath(workdir)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    _require(os.path.isdir(existing), f"--workdir {workdir}: {existing} is not a directory")
    _require(os.access(existing, os.W_OK | os.X_OK), f"--workdir {workdir} is not writable ({existing}): choose another")
