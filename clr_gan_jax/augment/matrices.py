"""Batched homogeneous transforms: 3x3 for image coordinates, 4x4 for RGB colour, from per-sample parameters."""

import functools

import jax
import jax.numpy as jnp

matmul = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)


def matrix(*rows) -> jax.Array:
    """Rows of scalars or per-sample (N,) arrays -> (N, rows, columns) float32; (rows, columns) if all scalars."""
    elements = [jnp.asarray(e, jnp.float32) for row in rows for e in row]
    shape = jnp.broadcast_shapes(*(e.shape for e in elements))
    stacked = jnp.stack([jnp.broadcast_to(e, shape) for e in elements], axis=-1)
    return stacked.reshape(shape + (len(rows), len(rows[0])))


def translate2d(tx, ty) -> jax.Array:
    return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1])


def scale2d(sx, sy) -> jax.Array:
    return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def rotate2d(theta) -> jax.Array:
    c, s = jnp.cos(theta), jnp.sin(theta)
    return matrix([c, -s, 0], [s, c, 0], [0, 0, 1])


def translate3d(tx, ty, tz) -> jax.Array:
    return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1])


def scale3d(sx, sy, sz) -> jax.Array:
    return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1])


def rotate3d(axis, theta) -> jax.Array:
    """Rotation by ``theta`` about the unit vector ``axis`` (3 numbers), Rodrigues' form."""
    x, y, z = axis
    c, s = jnp.cos(theta), jnp.sin(theta)
    cc = 1 - c
    return matrix(
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
    )
