"""Per-sample random parameters: a transform's value where its gate opens, its identity value elsewhere.

All randomness of a call comes from one draw of uniforms: a table with a row per sample and fixed columns per
transform (its gate and its values; normals by the inverse CDF), then the per-pixel noise if any. One random-number
generator to compile (XLA takes about a second for each on a CPU) instead of dozens, and a transform's parameters
for a given key do not depend on which other transforms the pipe has.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

_STREAMS = (
    "xflip",
    "rotate90",
    "xint",
    "scale",
    "pre_rotate",
    "aniso",
    "post_rotate",
    "xfrac",
    "brightness",
    "contrast",
    "lumaflip",
    "hue",
    "saturation",
    "band0",
    "band1",
    "band2",
    "band3",
    "noise",
    "cutout",
    "cutout_center",
)
_VALUES_PER_STREAM = 2  # translations and the cutout centre take two numbers per sample


class Draws:
    """The random parameters of one augmentation call; remembers, per sample, which gates opened.

    With ``debug_percentile=q`` every parameter is the deterministic value StyleGAN2-ADA's AugmentPipe uses for
    ``q`` (``debug(q)``), no gate is drawn and every sample counts as transformed.
    """

    def __init__(
        self, key: jax.Array, batch: int, debug_percentile: jax.Array | None, pixel_shape: tuple[int, ...] = ()
    ):
        """``pixel_shape``: the shape of the per-pixel noise to draw as well (none if empty)."""
        self.batch = batch
        self.percentile = None if debug_percentile is None else jnp.asarray(debug_percentile, jnp.float32)
        table_shape = (batch, len(_STREAMS), 1 + _VALUES_PER_STREAM)
        table_size = 0 if self.percentile is not None else math.prod(table_shape)  # debug values are not drawn
        pixel_size = math.prod(pixel_shape) if pixel_shape else 0
        uniforms = jax.random.uniform(key, (table_size + pixel_size,)) if table_size + pixel_size else None
        if table_size:
            table = uniforms[:table_size].reshape(table_shape)
            self._gates = table[..., 0]
            self._tables = {"uniform": table[..., 1:], "normal": _standard_normal(table[..., 1:])}
        self._pixels = _standard_normal(uniforms[table_size:]).reshape(pixel_shape) if pixel_size else None
        self._opened = []

    def __call__(
        self,
        name: str,
        probability,
        distribution: str,
        value: Callable[[jax.Array], jax.Array],
        identity: float,
        debug: Callable[[jax.Array], jax.Array],
        size: int = 1,
    ) -> jax.Array:
        """(batch,) values, (batch, size) if ``size > 1``: ``value(x)`` of ``x`` drawn from ``distribution``
        ('uniform' in [0, 1) or 'normal') where the sample's gate uniform is below ``probability``, else
        ``identity``. ``probability=None``: no gate."""
        shape = (self.batch, size) if size > 1 else (self.batch,)
        if self.percentile is not None:
            if probability is not None:
                self._opened.append(jnp.ones((self.batch,), bool))
            return jnp.broadcast_to(debug(self.percentile), shape).astype(jnp.float32)
        stream = _STREAMS.index(name)
        x = self._tables[distribution][:, stream, :size].reshape(shape)
        if probability is None:
            return value(x)
        gate = self._gates[:, stream] < probability
        self._opened.append(gate)
        return jnp.where(gate.reshape((self.batch,) + (1,) * (len(shape) - 1)), value(x), jnp.float32(identity))

    @property
    def pixels(self) -> jax.Array:
        """Standard normal noise of ``pixel_shape``."""
        return self._pixels

    def take_opened(self) -> jax.Array:
        """(batch,) bool: whether any gate drawn since the last call opened; starts the next group."""
        opened = jnp.any(jnp.stack(self._opened), axis=0) if self._opened else jnp.zeros((self.batch,), bool)
        self._opened = []
        return opened


def _standard_normal(uniform: jax.Array) -> jax.Array:
    """Uniforms in [0, 1) -> standard normals by the inverse CDF, as ``jax.random.normal`` makes them."""
    lowest = np.nextafter(np.float32(-1), np.float32(0))
    return np.sqrt(2).astype(np.float32) * jax.scipy.special.erfinv(jnp.maximum(uniform * 2 - 1, lowest))
