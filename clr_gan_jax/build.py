"""Config -> experiment: the one place that training, evaluation, export, sampling and the notebooks build from.

experiment = build.build(config)                      # validates the config; nothing is read or written
state = build.initial_state(experiment, mesh)         # replicated over the mesh
step = build.train_step_fn(experiment, mesh)          # step(state, batch, active) -> (state, metrics)
images = build.generate_fn(experiment)(state.ema, build.fixed_latents(experiment, 16))
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

from clr_gan_jax import data, methods, models, sharding
from clr_gan_jax.errors import require_number
from clr_gan_jax.methods import METHODS, Method
from clr_gan_jax.objectives import build_plugins, decoder_of, heads_of
from clr_gan_jax.state import TrainState

LOOP_INTERVALS = ("log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "num_samples")


@dataclasses.dataclass(frozen=True)
class Experiment:
    config: ml_collections.ConfigDict
    method: Method
    example_shape: tuple[int, ...]

    @property
    def images_per_step(self) -> int:
        """Real examples one train step consumes."""
        return self.method.real_batches * self.config.train.batch_size


def validate_loop(config: ml_collections.ConfigDict, num_devices: int):
    """The loop's own fields: step count, global batch, intervals."""
    t = config.train
    require_number("seed", config.seed, at_least=0, integer=True)
    require_number("train.steps", t.steps, at_least=1, integer=True)
    require_number("train.batch_size", t.batch_size, at_least=1, integer=True)
    for name in LOOP_INTERVALS:
        require_number(f"train.{name}", t[name], at_least=1, integer=True)
    sharding.require_divisible("train.batch_size", t.batch_size, num_devices)


def build(
    config: ml_collections.ConfigDict, num_devices: int = 1, example_shape: tuple[int, ...] | None = None
) -> Experiment:
    """Validates ``config`` (UserError names the first bad field) and builds its method; reads no data.

    ``example_shape`` replaces the data's own (an exported generator is rebuilt without its data).
    """
    validate_loop(config, num_devices)
    example_shape = tuple(example_shape) if example_shape is not None else data.example_shape(config.data)
    plugins = build_plugins(config)
    require_number("model.z_dim", config.model.z_dim, at_least=1, integer=True)
    networks = models.build(config.model, example_shape, heads_of(plugins), decoder_of(plugins))
    method = METHODS.get(config.method)(config, networks, plugins, example_shape)
    _check_plugins(method, plugins, example_shape)
    return Experiment(config=config, method=method, example_shape=example_shape)


def _check_plugins(method: Method, plugins, example_shape):
    """Lets each plugin check D's outputs and the latents, by shape only (nothing is computed)."""
    variables = jax.eval_shape(method.init_variables, jax.random.key(0))
    x = jax.ShapeDtypeStruct((2, *example_shape), jnp.float32)
    latents = jax.eval_shape(lambda rng: method.sample_latents(rng, 2), jax.random.key(0))
    d_outputs = jax.eval_shape(  # the method's D (VEEGAN's reads a latent too: None stands for zeros)
        lambda v, x, labels: method.networks["d"].module.apply(v, x, labels, train=False),
        variables["d"],
        x,
        latents.get("labels"),
    )
    for plugin in plugins:
        plugin.check(d_outputs, latents)


def initial_state(experiment: Experiment, mesh) -> TrainState:
    """The initial train state, replicated over ``mesh``.

    Initialised in one jitted computation (eager init compiles every layer separately), which
    every process runs identically from the seed, so no values cross processes.
    """
    init = functools.partial(methods.init_state, experiment.method, jax.random.key(experiment.config.seed))
    return jax.jit(init, out_shardings=sharding.replicated(mesh))()


def abstract_state(experiment: Experiment, mesh=None) -> TrainState:
    """Shapes and dtypes of the train state, computed without allocating: what a compatible checkpoint holds.

    With a mesh, each leaf also carries the replicated sharding, so a checkpoint can be
    restored onto it directly.
    """
    shapes = jax.eval_shape(
        functools.partial(methods.init_state, experiment.method), jax.random.key(experiment.config.seed)
    )
    if mesh is None:
        return shapes
    replicated = sharding.replicated(mesh)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), shapes)


def train_step_fn(experiment: Experiment, mesh) -> Callable:
    """``step(state, batch, active) -> (state, metrics)``, jitted over ``mesh``, the state donated.

    ``batch`` holds (real_batches, global batch, ...) arrays split over the mesh on axis 1;
    ``active`` (static) is `Method.active_phases` of the step.
    """
    constrain = functools.partial(jax.lax.with_sharding_constraint, shardings=sharding.batch_sharded(mesh))
    step = functools.partial(methods.train_step, experiment.method, constrain=constrain)
    return jax.jit(step, static_argnums=2, donate_argnums=0, out_shardings=sharding.replicated(mesh))


def abstract_batch(experiment: Experiment, mesh, image_dtype) -> dict:
    """Shapes, dtypes and shardings of one step's batch: (real_batches, global batch, ...) images and labels."""
    split = sharding.batch_sharded(mesh, batch_dim=1)
    leading = (experiment.method.real_batches, experiment.config.train.batch_size)
    return {
        "image": jax.ShapeDtypeStruct(leading + experiment.example_shape, image_dtype, sharding=split),
        "label": jax.ShapeDtypeStruct(leading, jnp.int32, sharding=split),
    }


@jax.jit
def all_finite(tree) -> jax.Array:
    """Whether every floating-point value of ``tree`` is finite: one boolean, for the checks before a save."""
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def generate_fn(experiment: Experiment) -> Callable:
    """``generate(variables, latents) -> samples`` in inference mode, jitted (samples in [-1, 1] or points)."""
    return jax.jit(experiment.method.generate)


def fixed_latents(experiment: Experiment, n: int, seed_offset: int = 1) -> dict:
    """``n`` picture latents drawn from seed + ``seed_offset``: the same for every sample grid of a run."""
    return picture_latents(experiment, n, jax.random.key(experiment.config.seed + seed_offset))


def picture_latents(experiment: Experiment, n: int, rng: jax.Array) -> dict:
    """About ``n`` latents for a picture, drawn from ``rng``; a conditional model's in class rows.

    With K classes, the first min(K, n) classes get n // min(K, n) samples each, in order (labels
    0, 0, ..., 1, 1, ...), so a grid of `grid_columns` columns shows one class per row.
    """
    latents = experiment.method.sample_latents(rng, n)
    classes = min(experiment.config.model.num_classes, n)
    if "labels" not in latents or not classes:
        return latents
    labels = jnp.repeat(jnp.arange(classes, dtype=latents["labels"].dtype), n // classes)
    return {**{name: value[: len(labels)] for name, value in latents.items()}, "labels": labels}


def grid_columns(experiment: Experiment, n: int) -> int | None:
    """Columns of the grid of ``n`` `picture_latents` samples: one row per class (None: a square-ish grid)."""
    classes = min(experiment.config.model.num_classes, n)
    return n // classes if classes else None
