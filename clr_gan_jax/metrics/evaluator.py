"""One entry point for every metric: the trainer's periodic evaluation and ``--mode=evaluate``.

    evaluator = create_evaluator(['fid', 'kid'], dataset_name='cifar10', source=source, resolution=32,
                                 num_samples=50_000, batch_size=250, cache_dir='~/.cache/clr_gan_jax',
                                 inception_weights='inception_fid.npz')
    results = evaluator(sample_fn)  # {'fid': ..., 'kid_mean': ..., 'kid_std': ...}

``sample_fn(batch_index, batch_size)`` returns generated samples in the data's format
(uint8 NHWC images or float32 (N, 2) points), deterministically per batch_index. The
samples are drawn once and streamed through every requested metric.

Metric names and the keys they produce:

* 'fid' -> fid; 'kid' -> kid_mean, kid_std; 'is' -> is_mean, is_std; 'pr' -> precision,
  recall. These use the FID Inception (``inception_weights``); the real statistics are
  cached in ``cache_dir``.
* 'mixture' -> modes, hq_fraction, kl_modes (Ring8 / Grid25 sources).
* 'digits' -> digits_fd, digits_classes, digits_kl (DigitsSource).
* 'stacked_digits' -> stacked_modes, stacked_kl, stacked_fd (StackedDigitsSource).
* 'intra_fid' -> intra_fid (the mean over the classes) and intra_fid_<k> (class k): the FID of a
  conditional generator's samples of class k against the real images of class k (the FID
  Inception; the real statistics cached per class). 'intra_digits' -> intra_digits_fd and
  intra_digits_fd_<k>: the same on the digits classifier's features (DigitsSource). A conditional
  generator's evaluation samples are drawn class by class in turn (`generated_classes`).

Evaluation runs in one process; with a mesh, batches are split over its 'data' axis.
"""

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from clr_gan_jax.data.image_files import ImageFolderSource, Progress
from clr_gan_jax.metrics import features as features_lib
from clr_gan_jax.metrics import fid, inception, inception_score, kid, precision_recall, proxy, reference_cache
from clr_gan_jax.metrics import inception_weights as weights_lib
from clr_gan_jax.registry import Registry


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric name of ``eval.metrics``: the result keys it produces and what it needs.

    ``lower_is_better`` / ``higher_is_better`` list the keys that can rank checkpoints
    (``eval.best_metric``); ``datasets`` the data.name values it applies to (None: any
    image data). Inception metrics share one pass of the FID Inception; the others are
    built by ``build(source, batch_size, mesh)``.
    """

    keys: tuple[str, ...]
    lower_is_better: tuple[str, ...] = ()
    higher_is_better: tuple[str, ...] = ()
    datasets: tuple[str, ...] | None = None
    inception: bool = False
    build: Callable | None = None
    per_class: bool = False  # a conditional generator's metric; the results hold <key>_<k> for every class k too


def generated_classes(start, count: int, num_classes: int) -> jax.Array:
    """The classes of a conditional generator's evaluation samples start, ..., start + count - 1: sample i has class
    i mod K. Every class gets an equal share (the zoo's protocol: 5k samples of each CIFAR-10 class), and per-class
    metrics know each sample's class from its position in the stream. ``start`` may be traced."""
    return (start + jnp.arange(count)) % num_classes


def intra_frechet(
    features: np.ndarray, classes: np.ndarray, real_statistics: Sequence[tuple[np.ndarray, np.ndarray]], key: str
) -> dict[str, float]:
    """{<key>_<k>: the Frechet distance of the features of class k to the real statistics of class k; key: their
    mean over the classes} (intra-FID, Miyato & Koyama 2018)."""
    per_class = {
        f"{key}_{k}": fid.frechet_distance(*fid.feature_statistics(features[classes == k]), *statistics)
        for k, statistics in enumerate(real_statistics)
    }
    return {key: float(np.mean(list(per_class.values()))), **per_class}


class ClassStatistics:
    """Per-class (mu, sigma) of one output of a BatchedApply over a labelled source, computed in one pass on first
    use; with ``cache_path(k)`` each class's statistics are read from, or written to, that file."""

    def __init__(self, apply: features_lib.BatchedApply, output: str, source, num_classes: int, cache_path=None):
        self._apply, self._output, self._source = apply, output, source
        self._num_classes, self._cache_path = num_classes, cache_path

    @functools.cached_property
    def _features_by_class(self) -> list[np.ndarray]:
        labels = []

        def sample_fn(batch_index: int, batch_size: int) -> np.ndarray:
            stop = min(len(self._source), (batch_index + 1) * batch_size)
            items = [self._source[i] for i in range(batch_index * batch_size, stop)]
            labels.extend(int(item["label"]) for item in items)
            return np.stack([item["image"] for item in items])

        outputs = self._apply.stream(sample_fn, len(self._source), "real data by class")[self._output]
        features, labels = outputs.reshape(len(outputs), -1), np.asarray(labels)
        return [features[labels == k] for k in range(self._num_classes)]

    @functools.cached_property
    def statistics(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._cache_path is None:
            return [fid.feature_statistics(features) for features in self._features_by_class]
        cached = [
            reference_cache.reference_statistics(self._cache_path(k), lambda k=k: self._features_by_class[k])
            for k in range(self._num_classes)
        ]
        return [(c["mu"], c["sigma"]) for c in cached]


class InceptionMetrics:
    """FID, KID, IS and precision/recall on one pass of the FID Inception over the samples."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        weights: weights_lib.InceptionWeights,
        resize_mode: str,
        reference_path: str,
        real_sample_fn: features_lib.SampleFn,
        num_real: int,
        batch_size: int,
        mesh: jax.sharding.Mesh | None,
        source=None,
        num_classes: int = 0,
    ):
        """``source`` and ``num_classes`` are for 'intra_fid' (its per-class statistics are cached beside
        ``reference_path``, from all of ``source``)."""
        self.names = tuple(names)
        self._apply = features_lib.BatchedApply(
            features_lib.inception_features_fn(resize_mode), weights.variables, batch_size, mesh
        )
        self._reference_path = reference_path
        self._real_sample_fn, self._num_real = real_sample_fn, num_real
        self._collector = None
        self._num_classes = num_classes
        if "intra_fid" in self.names:
            stem = reference_path.removesuffix(".npz")
            self._classes = ClassStatistics(
                self._apply, "pool3", source, num_classes, cache_path=lambda k: f"{stem}-all-class{k}.npz"
            )

    @functools.cached_property
    def reference(self) -> dict[str, np.ndarray]:
        """Real-data statistics (with the features when KID or P/R need them), from the cache if there."""
        compute = lambda: self._apply.stream(self._real_sample_fn, self._num_real, "Inception features of real data")[
            "pool3"
        ]
        keep_features = bool({"kid", "pr"} & set(self.names))
        return reference_cache.reference_statistics(self._reference_path, compute, keep_features)

    def begin(self) -> None:
        if set(self.names) - {"intra_fid"}:
            self.reference  # noqa: B018 -- real statistics first, so progress reads in order.
        if "intra_fid" in self.names:
            self._classes.statistics  # noqa: B018
        self._collector = features_lib.Collector(self._apply)

    def add(self, batch: np.ndarray) -> None:
        self._collector.add(batch)

    def result(self) -> dict[str, float]:
        outputs, self._collector = self._collector.result(), None
        fake, results = outputs["pool3"], {}
        if "intra_fid" in self.names:
            classes = np.asarray(generated_classes(0, len(fake), self._num_classes))
            results.update(intra_frechet(fake, classes, self._classes.statistics, "intra_fid"))
        if not set(self.names) - {"intra_fid"}:
            return results
        real = self.reference
        if "fid" in self.names:
            results["fid"] = fid.frechet_distance(*fid.feature_statistics(fake), real["mu"], real["sigma"])
        if "kid" in self.names:
            results["kid_mean"], results["kid_std"] = kid.kernel_inception_distance(real["features"], fake)
        if "is" in self.names:
            results["is_mean"], results["is_std"] = inception_score.inception_score(outputs["logits_unbiased"])
        if "pr" in self.names:
            results["precision"], results["recall"] = precision_recall.precision_recall(real["features"], fake)
        return results


class MixtureMetrics:
    """Modes covered, high-quality fraction and KL for 2-D Gaussian mixtures."""

    def __init__(self, centres: np.ndarray, std: float):
        self._centres, self._std = centres, std
        self._points = []

    def begin(self) -> None:
        self._points = []

    def add(self, batch: np.ndarray) -> None:
        self._points.append(np.asarray(batch))

    def result(self) -> dict[str, float]:
        points, self._points = np.concatenate(self._points), []
        return proxy.mixture_metrics(points, self._centres, self._std)


class ClassifierMetrics:
    """Base of the metrics read from the digits classifier's outputs on the samples."""

    def __init__(self, outputs_fn, batch_size: int, mesh: jax.sharding.Mesh | None):
        """``outputs_fn(variables, images)`` -> dict of per-example arrays, given to ``summarise``."""
        self._apply = features_lib.BatchedApply(outputs_fn, proxy.load_digits_classifier(), batch_size, mesh)
        self._collector = None

    def begin(self) -> None:
        self._collector = features_lib.Collector(self._apply)

    def add(self, batch: np.ndarray) -> None:
        self._collector.add(batch)

    def result(self) -> dict[str, float]:
        outputs, self._collector = self._collector.result(), None
        return self.summarise(outputs)

    def summarise(self, outputs: dict[str, np.ndarray]) -> dict[str, float]:
        raise NotImplementedError


class DigitsMetrics(ClassifierMetrics):
    """Frechet distance to the real digits and class coverage."""

    outputs_fn = staticmethod(proxy.digits_outputs)
    max_reals: int | None = None

    def __init__(self, source, batch_size: int, mesh: jax.sharding.Mesh | None):
        super().__init__(self.outputs_fn, batch_size, mesh)
        self._source = source

    @functools.cached_property
    def real_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        count = min(len(self._source), self.max_reals or len(self._source))
        real = self._apply.stream(features_lib.source_sample_fn(self._source), count, "real digits")
        return fid.feature_statistics(real["features"].reshape(-1, real["features"].shape[-1]))

    def begin(self) -> None:
        self.real_statistics  # noqa: B018 -- real data first, so progress reads in order.
        super().begin()

    def summarise(self, outputs: dict[str, np.ndarray]) -> dict[str, float]:
        return proxy.digits_metrics(outputs["features"], outputs["probs"], self.real_statistics)


class StackedDigitsMetrics(DigitsMetrics):
    """Modes of 1000 covered, each channel classified as a digit, and the channels' distance to real digits."""

    outputs_fn = staticmethod(proxy.stacked_digits_outputs)
    max_reals = 2000  # 6000 real channels: the statistics of 64 features are settled well before that

    def summarise(self, outputs: dict[str, np.ndarray]) -> dict[str, float]:
        return proxy.stacked_digits_metrics(outputs["features"], outputs["probs"], self.real_statistics)


class IntraDigitsMetrics(ClassifierMetrics):
    """The Frechet distance on the digits classifier's features within each class (the digits' intra-FID)."""

    def __init__(self, source, batch_size: int, mesh: jax.sharding.Mesh | None):
        super().__init__(proxy.digits_outputs, batch_size, mesh)
        self._classes = ClassStatistics(self._apply, "features", source, source.num_classes)
        self._num_classes = source.num_classes

    def begin(self) -> None:
        self._classes.statistics  # noqa: B018 -- real data first, so progress reads in order.
        super().begin()

    def summarise(self, outputs: dict[str, np.ndarray]) -> dict[str, float]:
        features = outputs["features"]
        classes = np.asarray(generated_classes(0, len(features), self._num_classes))
        return intra_frechet(features, classes, self._classes.statistics, "intra_digits_fd")


METRICS = Registry("eval.metrics")
METRICS.register("fid")(MetricSpec(("fid",), lower_is_better=("fid",), inception=True))
METRICS.register("kid")(MetricSpec(("kid_mean", "kid_std"), lower_is_better=("kid_mean",), inception=True))
METRICS.register("is")(MetricSpec(("is_mean", "is_std"), higher_is_better=("is_mean",), inception=True))
METRICS.register("pr")(MetricSpec(("precision", "recall"), higher_is_better=("precision", "recall"), inception=True))
METRICS.register("mixture")(
    MetricSpec(
        ("modes", "hq_fraction", "kl_modes"),
        lower_is_better=("kl_modes",),
        higher_is_better=("modes", "hq_fraction"),
        datasets=("ring8", "grid25"),
        build=lambda source, batch_size, mesh: MixtureMetrics(source.centres, source.std),
    )
)
METRICS.register("digits")(
    MetricSpec(
        ("digits_fd", "digits_classes", "digits_kl"),
        lower_is_better=("digits_fd", "digits_kl"),
        higher_is_better=("digits_classes",),
        datasets=("digits",),
        build=DigitsMetrics,
    )
)
METRICS.register("stacked_digits")(
    MetricSpec(
        ("stacked_modes", "stacked_kl", "stacked_fd"),
        lower_is_better=("stacked_kl", "stacked_fd"),
        higher_is_better=("stacked_modes",),
        datasets=("stacked_digits",),
        build=StackedDigitsMetrics,
    )
)


METRICS.register("intra_fid")(
    MetricSpec(("intra_fid",), lower_is_better=("intra_fid",), inception=True, per_class=True)
)
METRICS.register("intra_digits")(
    MetricSpec(
        ("intra_digits_fd",),
        lower_is_better=("intra_digits_fd",),
        datasets=("digits",),
        build=IntraDigitsMetrics,
        per_class=True,
    )
)


def higher_is_better(key: str) -> bool:
    """Whether result ``key`` ranks checkpoints in descending order."""
    return any(key in METRICS.get(name).higher_is_better for name in METRICS)


class Evaluator:
    """``evaluator(sample_fn) -> {metric key: float}``; see the module docstring."""

    def __init__(self, groups: Sequence, *, num_samples: int, batch_size: int, resolution: int, channels: int):
        self.groups = tuple(groups)
        self.num_samples, self.batch_size = num_samples, batch_size
        self.resolution, self.channels = resolution, channels

    def __call__(self, sample_fn: features_lib.SampleFn) -> dict[str, float]:
        for group in self.groups:
            group.begin()
        progress = Progress("Evaluating generated samples", self.num_samples)
        done = 0
        for batch in features_lib.batches(sample_fn, self.num_samples, self.batch_size):
            for group in self.groups:
                group.add(batch)
            done += len(batch)
            progress.update(done)
        results = {}
        for group in self.groups:
            results.update(group.result())
        return results


def create_evaluator(
    metric_names: Sequence[str],
    *,
    dataset_name: str,
    source,
    resolution: int,
    num_samples: int,
    batch_size: int,
    cache_dir: str,
    split: str = "train",
    num_real: int | None = None,
    inception_weights: str | None = None,
    resize_mode: str = "pytorch",
    mesh: jax.sharding.Mesh | None = None,
) -> Evaluator:
    """Builds an Evaluator for ``metric_names`` (names in METRICS) against the real data ``source``.

    Args:
      dataset_name, split: name the real data in the reference-statistics cache.
      source: random access real data, ``source[i] -> {'image': ..., 'label': ...}``.
      resolution: side of the images (the cache key; ignored for 2-D points).
      num_samples: generated samples per evaluation.
      batch_size: samples per sample_fn call and per compiled network call.
      cache_dir: where reference Inception statistics are cached.
      num_real: real images for the Inception statistics (default: all of ``source``).
      inception_weights: converted FID Inception .npz (see convert_inception), needed by
        'fid', 'kid', 'is' and 'pr'.
      resize_mode: 'pytorch' (pytorch-fid) or 'tf1' (original TF code, torch-fidelity).
      mesh: optional mesh with a 'data' axis; batch_size must split over it.
    """
    specs = {name: METRICS.get(name) for name in metric_names}
    if resize_mode not in inception.RESIZE_MODES:
        raise ValueError(f"resize_mode={resize_mode!r} is not one of {inception.RESIZE_MODES}.")
    groups = []
    wanted_inception = [name for name, spec in specs.items() if spec.inception]
    if wanted_inception:
        if inception_weights is None:
            raise ValueError(f"Metrics {wanted_inception} need inception_weights: {weights_lib.HOW_TO_GET}.")
        weights = weights_lib.load_inception_params(inception_weights)
        num_real = len(source) if num_real is None else min(num_real, len(source))
        path = reference_cache.cache_path(
            cache_dir,
            dataset_name=dataset_name,
            split=split,
            resolution=resolution,
            resize_mode=resize_mode,
            weights_sha256=weights.sha256,
            num_images=num_real,
        )
        groups.append(
            InceptionMetrics(
                wanted_inception,
                weights=weights,
                resize_mode=resize_mode,
                reference_path=path,
                real_sample_fn=features_lib.source_sample_fn(source),
                num_real=num_real,
                batch_size=batch_size,
                mesh=mesh,
                source=source,
                num_classes=getattr(source, "num_classes", 0),
            )
        )
    groups += [spec.build(source, batch_size, mesh) for spec in specs.values() if not spec.inception]
    channels = np.shape(source[0]["image"])[-1]
    return Evaluator(groups, num_samples=num_samples, batch_size=batch_size, resolution=resolution, channels=channels)


def image_files_sample_fn(path: str, evaluator: Evaluator) -> features_lib.SampleFn:
    """A sample_fn over the images of a folder or zip (e.g. exported samples), in sorted name order.

    The images must have the evaluator's resolution and number of channels, and be at
    least ``evaluator.num_samples``.
    """
    files = ImageFolderSource(path, evaluator.resolution, channels=evaluator.channels, labels_from=None)
    if len(files) < evaluator.num_samples:
        raise ValueError(f"{path} holds {len(files)} images; the evaluator needs {evaluator.num_samples}.")
    return features_lib.source_sample_fn(files)


def evaluate_image_files(path: str, evaluator: Evaluator) -> dict[str, float]:
    """Metrics of the image files in a folder or zip."""
    return evaluator(image_files_sample_fn(path, evaluator))
