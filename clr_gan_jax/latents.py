"""Traversal pictures as edits of latents: each row of the picture is a set of base latents with one slice replaced.

A `Row` takes, for each of its columns, the base latents at ``base[column]`` and sets
``latents[key][:, start:start + width]`` to ``values[column]``; nothing else differs between two rows built
on the same base. InfoGAN's codes (`objectives.infogan`) and EigenGAN's layer coordinates (`models.eigengan`)
describe their rows this way, and `rows_latents` turns them into one batch for the generator.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Row(NamedTuple):
    key: str  # the latent entry edited ('z', 'codes')
    start: int  # first edited coordinate
    values: jax.Array  # (columns, width): the edited coordinates' values, column by column
    base: jax.Array  # (columns,) int: which base latent each column starts from


def rows_latents(base: dict[str, jax.Array], rows: list[Row]) -> dict[str, jax.Array]:
    """The latents of every row, row after row: (len(rows) * columns, ...) per entry of ``base``."""
    edited = []
    for row in rows:
        latents = {name: value[row.base] for name, value in base.items()}
        width = row.values.shape[-1]
        latents[row.key] = latents[row.key].at[:, row.start : row.start + width].set(row.values)
        edited.append(latents)
    return jax.tree.map(lambda *parts: jnp.concatenate(parts), *edited)
