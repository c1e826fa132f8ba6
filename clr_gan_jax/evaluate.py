"""Evaluation of a run: the trainer's periodic metrics and best checkpoint, and ``--mode=evaluate``.

The metrics are those of `metrics.evaluator`, named in ``config.eval.metrics``. The EMA
generator is sampled with latents drawn from the batch index (by the method's own latent
sampler), so every evaluation of a run (in the loop or afterwards) sees the same latents; a
conditional generator's labels are the classes in turn (`metrics.evaluator.generated_classes`),
which the per-class metrics (intra-FID) rely on.

The best checkpoint lives beside the last N: ``<workdir>/best/`` is laid out as a run
directory holding one checkpoint (the full train state at the best evaluation) and
``best.json`` ({'metric', 'value', 'step'}), so every mode works on it, e.g.
``--workdir=runs/x/best --mode=export``.
"""

import datetime
import hashlib
import json
import os
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from clr_gan_jax import build, checkpoints, data, export, images, sharding
from clr_gan_jax import workdir as workdir_lib
from clr_gan_jax.errors import UserError, require, require_number
from clr_gan_jax.metrics import evaluator as evaluator_lib
from clr_gan_jax.metrics import inception, inception_weights

METRICS = evaluator_lib.METRICS
BEST_FILE = "best.json"


def metric_names(eval_config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """``eval.metrics`` as names: 'fid, is' or ('fid', 'is') -> ('fid', 'is'); '' -> ()."""
    metrics = eval_config.metrics
    parts = metrics.split(",") if isinstance(metrics, str) else metrics
    return tuple(name.strip() for name in parts if name.strip())


def validate(config: ml_collections.ConfigDict, num_devices: int):
    """The ``eval`` section: known metrics that fit the data, batch sizes, the Inception weights if needed."""
    e = config.eval
    for name in ("every", "num_samples", "batch_size"):
        require_number(f"eval.{name}", e[name], at_least=1, integer=True)
    sharding.require_divisible("eval.batch_size", e.batch_size, num_devices)
    require(e.num_real is None or e.num_real >= 2, f"eval.num_real must be None (all) or >= 2, got {e.num_real!r}")
    require(
        e.resize_mode in inception.RESIZE_MODES,
        f"eval.resize_mode must be one of {inception.RESIZE_MODES}, got {e.resize_mode!r}",
    )
    names = metric_names(e)
    points = data.is_points(config.data)
    for name in names:
        spec = METRICS.get(name)
        if spec.datasets is not None:
            require(
                config.data.name in spec.datasets,
                f"eval.metrics: {name!r} needs data.name in {spec.datasets}, got {config.data.name!r}",
            )
        else:
            require(not points, f"eval.metrics: {name!r} needs images, not 2-D points ({config.data.name!r})")
        if spec.per_class:
            require(
                config.model.num_classes > 0,
                f"eval.metrics: {name!r} is per class and needs a conditional model (model.num_classes > 0)",
            )
    if any(METRICS.get(name).inception for name in names):
        path = e.inception_weights
        require(
            bool(path) and os.path.exists(os.path.expanduser(path)),
            f"eval.metrics={','.join(names)} needs the FID Inception weights, but eval.inception_weights={path!r} "
            f"does not exist: {inception_weights.HOW_TO_GET}, "
            "then pass --config.eval.inception_weights=inception_fid.npz",
        )
        inception_weights.load_inception_params(os.path.expanduser(path))  # a bad file fails here, before any write
    if e.best_metric:
        require(
            bool(names),
            f"eval.best_metric={e.best_metric!r} needs eval.metrics, e.g. --config.eval.metrics=fid; or set it to ''",
        )
        keys = [
            key for name in names for key in (METRICS.get(name).lower_is_better + METRICS.get(name).higher_is_better)
        ]
        require(
            e.best_metric in keys,
            f"eval.best_metric={e.best_metric!r} is not a result of eval.metrics={','.join(names)!r}; "
            f"use one of {keys} or ''",
        )


def _reference_name(data_config: ml_collections.ConfigDict) -> str:
    """Names the real data in the reference-statistics cache; folders and shards by their path too."""
    if not data.dataset(data_config).needs_path:
        return data_config.name
    path = os.path.abspath(os.path.expanduser(data_config.path))
    key = f"{path}|{data_config.transform}|{data_config.channels}"
    return f"{data_config.name}-{os.path.basename(path)}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def create_evaluator(config: ml_collections.ConfigDict, source, mesh) -> evaluator_lib.Evaluator:
    """The Evaluator of ``config.eval`` against the real data ``source``."""
    e = config.eval
    per_class = [name for name in metric_names(e) if METRICS.get(name).per_class]
    require(
        not per_class or getattr(source, "num_classes", 0) == config.model.num_classes,
        f"eval.metrics: {','.join(per_class)} compare classes, but the data have "
        f"{getattr(source, 'num_classes', 0)} and model.num_classes is {config.model.num_classes}",
    )
    return evaluator_lib.create_evaluator(
        metric_names(e),
        dataset_name=_reference_name(config.data),
        source=source,
        resolution=config.data.resolution,
        num_samples=e.num_samples,
        batch_size=e.batch_size,
        cache_dir=e.cache_dir,
        split=config.data.split,
        num_real=e.num_real,
        inception_weights=e.inception_weights or None,
        resize_mode=e.resize_mode,
        mesh=mesh,
    )


def generator_sampler(experiment: build.Experiment, mesh) -> Callable[[dict], Callable]:
    """``sampler(variables) -> sample_fn`` for the evaluator, compiled once per run.

    ``sample_fn(batch_index, batch_size)`` returns the generator's outputs for latents
    drawn from ``batch_index``, in the data's format: uint8 NHWC images or float (N, 2) points.
    """
    config, method = experiment.config, experiment.method
    batch_size = config.eval.batch_size
    key = jax.random.key(config.seed + 2)  # seed + 1 draws the sample grids' latents

    def generate_batch(variables, index):
        latent_rng, noise_rng = jax.random.split(jax.random.fold_in(key, index))
        latents = method.sample_latents(latent_rng, batch_size)
        if "labels" in latents:
            classes = evaluator_lib.generated_classes(index * batch_size, batch_size, config.model.num_classes)
            latents["labels"] = classes.astype(latents["labels"].dtype)
        latents = jax.lax.with_sharding_constraint(latents, sharding.batch_sharded(mesh))
        return method.generate(variables, latents, noise_rng)

    generate_batch = jax.jit(generate_batch, out_shardings=sharding.replicated(mesh))
    as_points = len(experiment.example_shape) == 1

    def sampler(variables):
        def sample_fn(batch_index: int, size: int) -> np.ndarray:
            assert size == batch_size, (size, batch_size)
            samples = np.asarray(generate_batch(variables, batch_index))
            return samples if as_points else images.to_uint8(samples)

        return sample_fn

    return sampler


def format_results(results: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in results.items())


class BestCheckpoint:
    """Keeps the train state of the best evaluation so far in ``<workdir>/best`` (see the module docstring).

    Only a strictly better, finite value replaces it (ties keep the earlier step). A resumed
    run reads ``best.json`` and only replaces its checkpoint at a later step. Every process
    must call `update` (orbax saves are collective); process 0 writes ``best.json``.
    """

    def __init__(self, workdir: str, metric: str, is_writer: bool):
        self.directory = os.path.join(workdir, "best")
        self.metric, self._is_writer = metric, is_writer
        self._higher_is_better = evaluator_lib.higher_is_better(metric)
        self.step, self.value = None, None
        path = os.path.join(self.directory, BEST_FILE)
        if os.path.exists(path):
            with open(path) as f:
                best = json.load(f)
            if best["metric"] == metric:
                self.step, self.value = best["step"], best["value"]
        self._checkpointer = checkpoints.Checkpointer(self.directory, max_to_keep=1)

    def _improves(self, step: int, value: float) -> bool:
        if not np.isfinite(value):
            return False
        if self.value is None:
            return True
        better = value > self.value if self._higher_is_better else value < self.value
        return better and step > self.step

    def update(self, step: int, results: dict, state, config) -> bool:
        """Saves ``state`` as the best if ``results`` improve on it; returns whether it did."""
        value = results[self.metric]
        if not self._improves(step, value) or not bool(build.all_finite(state)):
            return False
        self._checkpointer.save(step, state, config)  # complete before best.json names it
        self.step, self.value = step, value
        if self._is_writer:
            path = os.path.join(self.directory, BEST_FILE)
            with open(path + ".partial", "w") as f:
                json.dump({"metric": self.metric, "value": value, "step": step}, f)
            os.replace(path + ".partial", path)
        return True

    def close(self):
        self._checkpointer.close()


class PeriodicEvaluation:
    """The trainer's evaluation of the EMA generator: metrics.jsonl + TensorBoard ('eval/<key>'), console, best.

    Built once per run, so the compiled networks and the real statistics are reused.
    ``writer`` is None on processes other than 0, which evaluate but write nothing.
    """

    def __init__(self, experiment: build.Experiment, source, mesh, workdir: str, writer):
        config = experiment.config
        self._config, self._writer = config, writer
        self._evaluator = create_evaluator(config, source, mesh)
        self._sampler = generator_sampler(experiment, mesh)
        metric = config.eval.best_metric
        self.best = BestCheckpoint(workdir, metric, writer is not None) if metric else None

    def __call__(self, step: int, state) -> dict[str, float]:
        start = time.monotonic()
        results = self._evaluator(self._sampler(state.ema))
        seconds = time.monotonic() - start
        improved = self.best is not None and self.best.update(step, results, state, self._config)
        if self._writer is not None:
            self._writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
            print(f"[eval {step}] {format_results(results)} | {seconds:.1f}s{self._best_note(improved)}", flush=True)
        return results

    def _best_note(self, improved: bool) -> str:
        if self.best is None or self.best.step is None:
            return ""
        return f" | {'new ' if improved else ''}best {self.best.metric}={self.best.value:.4g} at step {self.best.step}"

    def close(self):
        if self.best is not None:
            self.best.close()


def _select_steps(workdir: str, which: str) -> list[int]:
    """'latest', 'all' or a comma-separated list of steps -> steps that have a checkpoint in ``workdir``."""
    available = export.checkpoint_steps(workdir)
    if not available:
        raise UserError(f"no checkpoint in {workdir}: train first (--mode=train)")
    if which == "latest":
        return available[-1:]
    if which == "all":
        return available
    try:
        wanted = [int(s) for s in which.split(",") if s.strip()]
    except ValueError:
        wanted = []
    if not wanted:
        raise UserError(f"--checkpoints={which!r}: use latest, all, or steps like 1000,2000")
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise UserError(f"--checkpoints={which!r}: no checkpoint at step(s) {missing}; {workdir} has steps {available}")
    return sorted(set(wanted))


def _result_of(spec: evaluator_lib.MetricSpec, key: str) -> bool:
    """Whether result ``key`` is one of the metric's: one of its keys, or for a per-class metric <key>_<class>."""
    name, _, suffix = key.rpartition("_")
    return key in spec.keys or (spec.per_class and name in spec.keys and suffix.isdigit())


def _evaluate_and_write(evaluator, sample_fn, config, workdir: str, step: int | None, snapshot: str) -> list[dict]:
    """Evaluates ``sample_fn``; appends one StyleGAN2-ADA style line per metric to <workdir>/metric-<name>.jsonl."""
    start = time.monotonic()
    results = evaluator(sample_fn)
    seconds = time.monotonic() - start
    lines = [
        {
            "results": {k: v for k, v in results.items() if _result_of(METRICS.get(name), k)},
            "metric": name,
            "total_time": seconds,  # of the whole evaluation pass, shared by its metrics
            "total_time_str": str(datetime.timedelta(seconds=round(seconds))),
            "num_samples": config.eval.num_samples,
            "snapshot_step": step,
            "snapshot": snapshot,
            "timestamp": time.time(),
        }
        for name in metric_names(config.eval)
    ]
    if jax.process_index() == 0:
        for line in lines:
            with open(os.path.join(workdir, f"metric-{line['metric']}.jsonl"), "a") as f:
                f.write(json.dumps(line) + "\n")
        what = snapshot if step is None else f"step {step}"
        print(f"[evaluate {what}] {format_results(results)} | {seconds:.1f}s", flush=True)
    return lines


def run(config: ml_collections.ConfigDict, workdir: str, which_checkpoints: str = "latest", image_path: str = ""):
    """``--mode=evaluate``: metrics of checkpoints of ``workdir``, or of the images in ``image_path``.

    Returns the metric lines (dicts) it appended to ``<workdir>/metric-<name>.jsonl``.
    """
    mesh = sharding.make_mesh()
    experiment = build.build(config, mesh.size)
    validate(config, mesh.size)
    workdir_lib.validate(workdir)
    if not metric_names(config.eval):
        raise UserError("eval.metrics is empty: name the metrics, e.g. --config.eval.metrics=digits (or =fid,is)")
    evaluator = create_evaluator(config, data.create_source(config.data), mesh)
    if image_path:
        per_class = [name for name in metric_names(config.eval) if METRICS.get(name).per_class]
        require(not per_class, f"--images: {','.join(per_class)} need each image's class; evaluate checkpoints instead")
        try:
            sample_fn = evaluator_lib.image_files_sample_fn(image_path, evaluator)
        except UserError:
            raise
        except ValueError as e:  # too few images
            raise UserError(f"--images: {e} Lower --config.eval.num_samples or add images.") from None
        os.makedirs(workdir, exist_ok=True)
        lines = _evaluate_and_write(evaluator, sample_fn, config, workdir, None, os.path.abspath(image_path))
    else:
        lines, sampler = [], generator_sampler(experiment, mesh)
        for step in _select_steps(workdir, which_checkpoints):
            variables, _ = export.restore_ema(experiment, workdir, step)
            lines += _evaluate_and_write(evaluator, sampler(variables), config, workdir, step, os.path.abspath(workdir))
    paths = [os.path.join(workdir, f"metric-{name}.jsonl") for name in metric_names(config.eval)]
    logging.info("Appended %d lines to %s", len(lines), ", ".join(paths))
    return lines
