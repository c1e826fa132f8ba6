"""The grain pipeline: source -> per-epoch global shuffle -> x-flip -> this process's slice -> batches.

Everything random is a function of the seed and the example index, and a train step consumes
exactly one batch, so the data stream's position is the step: a run resumed at step k starts at
batch k (`make_dataset`'s ``start``) and continues the exact data order, with no iterator state to
checkpoint, whatever the number of reading processes.
"""

import grain
import numpy as np


def _mirror(example: dict, rng: np.random.Generator) -> dict:
    if rng.random() < 0.5:
        example = {**example, "image": example["image"][:, ::-1]}
    return example


def make_dataset(
    source,
    *,
    batch_size: int,
    seed: int,
    mirror: bool = False,
    process_index: int = 0,
    process_count: int = 1,
    start: int = 0,
) -> grain.MapDataset:
    """An endless dataset of batches {'image': (B, ...), 'label': (B,)} for one process, from batch ``start`` on.

    The global stream (each epoch of ``source`` shuffled with seed + epoch, then x-flips)
    is the same for any process count; process p takes its elements p, p + P, p + 2P, ...
    ``batch_size`` is this process's share, so the P processes' k-th batches together
    hold the examples of a single process's k-th batch of P * ``batch_size``.
    """
    ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(None)
    if mirror:
        ds = ds.random_map(_mirror, seed=seed)
    return ds[process_index::process_count].batch(batch_size, drop_remainder=True)[start:]


def make_iterator(dataset: grain.MapDataset, num_workers: int = 0) -> grain.DatasetIterator:
    """Iterates ``dataset``, reading in ``num_workers`` worker processes when > 0 (threads otherwise)."""
    iter_ds = dataset.to_iter_dataset()
    if num_workers > 0:
        iter_ds = iter_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return iter(iter_ds)
