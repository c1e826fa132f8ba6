"""Data parallelism over a device mesh: parameters replicated, batches split on the 'data' axis."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from clr_gan_jax.errors import require

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over all global devices (every process's), the batch axis named 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh, batch_dim: int = 0) -> NamedSharding:
    """Splits dimension ``batch_dim`` across the mesh; other dimensions stay whole."""
    return NamedSharding(mesh, P(*([None] * batch_dim), DATA_AXIS))


def put_batch(local_batch, mesh: Mesh, batch_dim: int = 0):
    """Assembles a global batch from each process's local slice (a single process passes the whole batch)."""
    sharding = batch_sharded(mesh, batch_dim)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def local_replica(tree):
    """This process's own copy of a replicated tree: for work only one process does (sample grids)."""
    return jax.tree.map(lambda x: x.addressable_data(0), tree)


def require_divisible(field: str, batch_size: int, num_devices: int):
    """A global batch must split evenly over the devices; UserError naming the field otherwise."""
    require(
        batch_size % num_devices == 0,
        f"{field}={batch_size} is not divisible by the {num_devices} devices: use a multiple of {num_devices}",
    )
