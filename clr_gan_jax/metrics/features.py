"""Streaming feature extraction: a jitted network applied batch by batch with bounded memory.

Every batch is padded to ``batch_size`` so the network compiles once. With a mesh, a
batch is split along its 'data' axis and the variables are replicated.
"""

import functools
from collections.abc import Callable, Iterator

import jax
import numpy as np

from clr_gan_jax import sharding
from clr_gan_jax.data.image_files import Progress
from clr_gan_jax.metrics import inception

# sample_fn(batch_index, batch_size) -> a batch (uint8 NHWC images or float32 (N, 2) points).
SampleFn = Callable[[int, int], np.ndarray]


def batches(sample_fn: SampleFn, num_samples: int, batch_size: int) -> Iterator[np.ndarray]:
    """Yields ``num_samples`` samples from ``sample_fn`` in batches (the last one cut to size)."""
    num_batches = -(-num_samples // batch_size)
    for index in range(num_batches):
        batch = np.asarray(sample_fn(index, batch_size))
        if len(batch) < min(batch_size, num_samples - index * batch_size):
            raise ValueError(f"sample_fn({index}, {batch_size}) returned {len(batch)} samples, fewer than asked.")
        yield batch[: num_samples - index * batch_size]


def source_sample_fn(source) -> SampleFn:
    """A sample_fn reading the images of a random-access source in order (its last batch may be short)."""

    def sample_fn(batch_index: int, batch_size: int) -> np.ndarray:
        stop = min(len(source), (batch_index + 1) * batch_size)
        return np.stack([source[i]["image"] for i in range(batch_index * batch_size, stop)])

    return sample_fn


class BatchedApply:
    """``fn(variables, batch) -> dict of per-example arrays``, jitted once for a fixed batch size.

    Call it on a batch of at most ``batch_size`` examples (padded by repeating the last
    one, the padding dropped from the result), or ``stream`` it over a sample_fn.
    """

    def __init__(self, fn, variables, batch_size: int, mesh: jax.sharding.Mesh | None = None):
        if mesh is not None and batch_size % mesh.shape[sharding.DATA_AXIS]:
            raise ValueError(
                f"batch_size={batch_size} does not split over the mesh's {mesh.shape[sharding.DATA_AXIS]} "
                f"'{sharding.DATA_AXIS}' devices: pick a multiple."
            )
        self.batch_size = batch_size
        if mesh is None:
            self._batch_sharding = None
            self._variables = jax.device_put(variables)
            self._fn = jax.jit(fn)
        else:
            self._batch_sharding = sharding.batch_sharded(mesh)
            replicated = sharding.replicated(mesh)
            self._variables = jax.device_put(variables, replicated)
            self._fn = jax.jit(fn, in_shardings=(replicated, self._batch_sharding), out_shardings=replicated)

    def dispatch(self, batch: np.ndarray):
        """Starts the computation on a padded batch; returns (device outputs, number of real examples)."""
        count = len(batch)
        if not 0 < count <= self.batch_size:
            raise ValueError(f"A batch of {count} examples does not fit batch_size={self.batch_size}.")
        if count < self.batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], self.batch_size - count, axis=0)])
        return self._fn(self._variables, jax.device_put(batch, self._batch_sharding)), count

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return _fetch(self.dispatch(batch))

    def stream(self, sample_fn: SampleFn, num_samples: int, name: str = "features") -> dict[str, np.ndarray]:
        """Outputs for ``num_samples`` samples of ``sample_fn``, concatenated."""
        collector, progress = Collector(self), Progress(name, num_samples)
        for batch in batches(sample_fn, num_samples, self.batch_size):
            collector.add(batch)
            progress.update(collector.count)
        progress.update(collector.count, force=True)
        return collector.result()


def _fetch(in_flight) -> dict[str, np.ndarray]:
    outputs, count = in_flight
    return {name: np.asarray(value)[:count] for name, value in outputs.items()}


class Collector:
    """Accumulates a BatchedApply's outputs batch by batch, one batch in flight.

    A batch is fetched only when the next one has been dispatched, so the caller can
    draw the next batch while the device computes.
    """

    def __init__(self, apply: BatchedApply):
        self._apply = apply
        self._done, self._pending = [], None
        self.count = 0

    def add(self, batch: np.ndarray) -> None:
        in_flight = self._apply.dispatch(batch)
        if self._pending is not None:
            self._done.append(_fetch(self._pending))
        self._pending = in_flight
        self.count += len(batch)

    def result(self) -> dict[str, np.ndarray]:
        if self._pending is not None:
            self._done.append(_fetch(self._pending))
            self._pending = None
        if not self._done:
            raise ValueError("No batch was added.")
        return {name: np.concatenate([r[name] for r in self._done]) for name in self._done[0]}


@functools.cache
def inception_features_fn(resize_mode: str) -> Callable:
    """(variables, images) -> {'pool3': (N, 2048), 'logits_unbiased': (N, 1008)}.

    The Inception Score uses the logits without the fc bias, as the original TF code,
    torch-fidelity and StyleGAN2-ADA do. One function per mode, so that jit's cache is
    shared by every BatchedApply of it.
    """
    model = inception.InceptionV3(resize_mode)

    def fn(variables, images):
        pool3, _ = model.apply(variables, images)
        kernel = variables["params"]["fc"]["kernel"]
        return {"pool3": pool3, "logits_unbiased": jax.numpy.dot(pool3, kernel, precision=model.precision)}

    return fn
