"""Improved precision and recall (Kynkaanniemi et al. 2019), k-NN manifolds as in StyleGAN2-ADA."""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _squared_distances(rows: jax.Array, cols: jax.Array) -> jax.Array:
    dots = jnp.dot(rows, cols.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum((rows**2).sum(1)[:, None] - 2.0 * dots + (cols**2).sum(1)[None, :], 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_neighbour(rows: jax.Array, manifold: jax.Array, k: int) -> jax.Array:
    """Squared distance of each row to its k-th nearest manifold point (the row itself is the 0th)."""
    return -jax.lax.top_k(-_squared_distances(rows, manifold), k + 1)[0][:, -1]


@jax.jit
def _inside(probes: jax.Array, manifold: jax.Array, radii: jax.Array) -> jax.Array:
    """Whether each probe lies within the k-NN ball of some manifold point."""
    return (_squared_distances(probes, manifold) <= radii[None, :]).any(axis=1)


def _row_blocks(fn, rows: np.ndarray, block: int) -> np.ndarray:
    """fn over fixed-size row blocks (the last one padded, so each fn compiles once)."""
    padded = np.concatenate([rows, np.repeat(rows[-1:], -len(rows) % block, axis=0)])
    return np.concatenate([np.asarray(fn(padded[i : i + block])) for i in range(0, len(padded), block)])[: len(rows)]


def manifold_coverage(manifold: np.ndarray, probes: np.ndarray, k: int = 3, block: int = 1000) -> float:
    """Fraction of ``probes`` inside the k-NN manifold of ``manifold``."""
    manifold_device = jnp.asarray(manifold, jnp.float32)
    block = min(block, len(manifold), len(probes))
    radii = _row_blocks(lambda rows: _kth_neighbour(rows, manifold_device, k), manifold, block)
    radii_device = jnp.asarray(radii)
    inside = _row_blocks(lambda rows: _inside(rows, manifold_device, radii_device), probes, block)
    return float(inside.mean())


def precision_recall(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = 3, block: int = 1000
) -> tuple[float, float]:
    """(precision, recall): fakes inside the real manifold, reals inside the fake manifold.

    ``block`` rows are compared with a whole set at a time: memory is block * N floats.
    """
    real = np.asarray(real_features, np.float32)
    fake = np.asarray(fake_features, np.float32)
    if real.ndim != 2 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"Precision/recall needs (N, D) features of one width, got {real.shape} and {fake.shape}.")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"Precision/recall with k={k} needs over {k} samples per set, got {len(real)}, {len(fake)}.")
    return manifold_coverage(real, fake, k, block), manifold_coverage(fake, real, k, block)
