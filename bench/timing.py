"""Helpers shared by the benchmarks: the thread count both frameworks get."""

import os


def pin_threads(threads: int) -> int:
    """Restricts this process to ``threads`` cores (0: keep all) and returns the count.

    Must run before the first JAX computation: XLA:CPU starts its thread pools, sized from
    the affinity mask, with the backend, which importing jax does not start.
    """
    cores = sorted(os.sched_getaffinity(0))
    if threads:
        cores = cores[:threads]
        os.sched_setaffinity(0, cores)
    return len(cores)
