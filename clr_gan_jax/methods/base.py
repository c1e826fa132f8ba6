"""A training procedure as data, and the one generic train step that runs any of them.

A `Method` names its networks (each with an optimizer), its phases and its latent
sampler. A `Phase` is a loss over the networks that trains exactly one of them, run every
``every`` steps (lazy regularisation) and ``repeats`` times in a row (the zoo's n_critic),
repeat ``r`` on the step's real batch ``r``. `train_step` runs the phases that are active
this step in order, one gradient and one optimizer update each, then the method's
end-of-step update (the generator's moving average, and whatever else it keeps in
``TrainState.aux``). The set of active phases is a static argument, so lazy
regularisation costs a handful of compiled variants and one dispatch per step.

Randomness is a function of (seed, step, phase, repeat): a resumed run draws the same
latents, and so is bitwise identical to an uninterrupted one.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from clr_gan_jax.errors import require_number
from clr_gan_jax.registry import Registry
from clr_gan_jax.state import NetState, TrainState

METHODS = Registry("method")


@dataclasses.dataclass(frozen=True)
class Network:
    """A network as a method trains it; ``project`` maps its parameters back to a constraint set after every update."""

    module: nn.Module
    optimizer: optax.GradientTransformation
    project: Callable[[Any], Any] | None = None


@dataclasses.dataclass(frozen=True)
class PhaseInputs:
    """What a phase's loss reads besides the parameters it differentiates."""

    nets: Mapping[str, NetState]
    aux: dict
    batch: dict
    rng: jax.Array
    constrain: Callable[[Any], Any]  # lays a batch-shaped array out like the real batch (data parallel)


@flax.struct.dataclass
class PhaseOutput:
    """A phase loss's auxiliary output: scalars to log, updated mutable collections by network, updated aux entries."""

    metrics: dict[str, jax.Array]
    collections: dict[str, dict] = dataclasses.field(default_factory=dict)
    aux: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Phase:
    """``loss(params, inputs) -> (scalar, PhaseOutput)`` trains ``network``.

    The step adds ``<name>_loss`` and ``<name>_grad_norm`` to the phase's metrics.
    """

    name: str
    network: str
    loss: Callable[[Any, PhaseInputs], tuple[jax.Array, PhaseOutput]]
    every: int = 1
    repeats: int = 1


@dataclasses.dataclass(frozen=True)
class Optimization:
    """What a method makes of the config's optimizer and EMA fields, as `--dry_run` reports it.

    ``optimizers`` holds, per network, the optimizer's name, lr, b1 and b2 as they are applied;
    ``ema_decay`` is the weight of the past in the generator's moving average per step (once any
    ramp-up is over); with ``ema_rampup`` > 0 the half-life is at most ``ema_rampup`` * images seen.
    """

    optimizers: Mapping[str, Mapping[str, Any]]
    ema_decay: float
    ema_rampup: float = 0.0


def plain_optimization(config) -> Optimization:
    """``optim`` as it is (g_lr for G, d_lr for D) and an EMA of decay ``train.ema_decay`` per step."""
    o = config.optim
    return Optimization(
        optimizers={
            net: {"name": o.name, "lr": lr, "b1": o.b1, "b2": o.b2} for net, lr in (("g", o.g_lr), ("d", o.d_lr))
        },
        ema_decay=config.train.ema_decay,
    )


@dataclasses.dataclass(frozen=True)
class Method:
    """A training procedure.

    ``init_variables(rng)`` gives every network's initial flax variables; ``sample_latents(rng,
    n)`` draws n latents (a dict with at least 'z'; 'labels' for a conditional generator);
    ``generate(variables, latents, rng=None)`` runs the generator for inference (sample grids,
    evaluation, export), with the variables of ``networks[generator]`` or of its moving average,
    drawing any randomness of its own (StyleGAN2's noise) from ``rng``, deterministic without one;
    ``end_of_step(state)`` runs after the phases (moving averages, aux updates).
    ``interpolation_latents(variables, latents, **options)`` maps latents to those of the space in which
    interpolation is linear, which ``generate`` also accepts (identity by default; StyleGAN2's W). ``real_batches``
    real batches feed each step. ``describe(config)`` says what the method makes of the config's
    optimizer and EMA fields (`Optimization`), for `--dry_run`. ``traversal(columns, sweep)`` gives the rows
    (`latents.Row`) of ``--mode=traverse``'s picture: one per value of a latent code or coordinate (none by default).
    """

    networks: Mapping[str, Network]
    phases: tuple[Phase, ...]
    init_variables: Callable[[jax.Array], dict[str, dict]]
    sample_latents: Callable[[jax.Array, int], dict[str, jax.Array]]
    generate: Callable[[dict, dict], jax.Array]
    end_of_step: Callable[[TrainState], TrainState]
    seed: int = 0
    generate_options: tuple[str, ...] = ()  # keyword arguments ``generate`` takes besides those three
    generator: str = "g"
    interpolation_latents: Callable[..., dict] = lambda variables, latents, **options: latents
    real_batches: int = 1
    init_aux: Callable[[], dict] = dict
    describe: Callable[[Any], Optimization] = plain_optimization
    traversal: Callable[[int, jax.Array], list] = lambda columns, sweep: []

    def active_phases(self, step: int) -> tuple[str, ...]:
        """Names of the phases that run in the step that starts from ``step`` completed steps."""
        return tuple(phase.name for phase in self.phases if step % phase.every == 0)


class Apply:
    """A network applied in training mode inside one traced loss, its mutable collections threaded call to call.

    Each call sees the collections the previous call left (BatchNorm statistics, spectral vectors,
    StyleGAN2's w_avg), like successive calls of a PyTorch module in train mode; ``collections`` is
    the result to return from the loss. ``trainable=False`` treats the parameters as constants (D
    inside G's loss); ``keep_updates=False`` drops the collection updates (a network whose statistics
    only its own phase may change). ``rng`` feeds the modules' 'noise' stream, a different key per
    call. A call of the module itself gets ``train=True``; a call of another method (``method=``)
    gets exactly the keyword arguments given.
    """

    def __init__(self, module: nn.Module, params, collections: dict, *, rng=None, trainable=True, keep_updates=True):
        self.module, self.keep_updates = module, keep_updates
        self.params = params if trainable else jax.lax.stop_gradient(params)
        self.collections = collections
        self._rng, self._calls = rng, 0

    def _apply(self, *args, **kwargs) -> tuple[Any, dict]:
        """(outputs, the collections after the call), without touching ``self.collections``."""
        rngs = None
        if self._rng is not None:
            rngs = {"noise": jax.random.fold_in(self._rng, self._calls)}
            self._calls += 1
        if kwargs.get("method") is None:
            kwargs["train"] = True
        variables = {"params": self.params, **self.collections}
        out, updates = self.module.apply(variables, *args, mutable=list(self.collections), rngs=rngs, **kwargs)
        return out, {**self.collections, **updates}

    def _keep(self, collections: dict):
        if self.keep_updates:
            self.collections = collections

    def __call__(self, *args, **kwargs):
        out, collections = self._apply(*args, **kwargs)
        self._keep(collections)
        return out

    def vjp(self, x: jax.Array, *args, transform: Callable = lambda x: x, **kwargs):
        """(outputs, vjp) of ``x -> module(transform(x), *args)``: for gradients with respect to inputs."""
        outputs, vjp_fn, collections = jax.vjp(lambda x: self._apply(transform(x), *args, **kwargs), x, has_aux=True)
        self._keep(collections)
        return outputs, vjp_fn

    def with_input_grad(self, x: jax.Array, *args, output: str = "logits", transform: Callable = lambda x: x):
        """(outputs, d sum(outputs[output]) / dx): for penalties on D's input gradients (through ``transform``)."""
        outputs, vjp_fn = self.vjp(x, *args, transform=transform)
        (input_grads,) = vjp_fn(jax.tree.map(jnp.zeros_like, outputs) | {output: jnp.ones_like(outputs[output])})
        return outputs, input_grads


def require_learning_rates(config) -> None:
    """``optim.g_lr`` and ``optim.d_lr`` are positive numbers (one-line UserErrors otherwise)."""
    for name in ("g_lr", "d_lr"):
        require_number(f"optim.{name}", config.optim[name], above=0)


def require_zoo_loop(config) -> None:
    """The zoo's loop settings (``train.n_critic`` D updates per G update, G's EMA decay) and the learning rates."""
    require_number("train.n_critic", config.train.n_critic, at_least=1, integer=True)
    require_number("train.ema_decay", config.train.ema_decay, at_least=0, below=1)
    require_learning_rates(config)


def d_phase_result(terms: dict, view, plugins, ada, aux: dict, collections: dict) -> tuple[jax.Array, PhaseOutput]:
    """D's loss and phase output, the same for every method: the plugins' D terms added to ``terms``, D's mean logits
    and real sign as metrics, and ADA's sign statistics of the reals observed (``view`` is the plugins' DView)."""
    for plugin in plugins:
        terms = terms | plugin.d_terms(view)
    real_logits, fake_logits = view.real_out["logits"], view.fake_out["logits"]
    logits = {
        "d_real_logit": real_logits.mean(),
        "d_fake_logit": fake_logits.mean(),
        "d_real_sign": jnp.sign(real_logits).mean(),
    }
    return sum(terms.values()), PhaseOutput(
        metrics=terms | logits | ada.metrics(aux), collections=collections, aux=ada.observe(aux, real_logits)
    )


def to_model_input(batch: jax.Array) -> jax.Array:
    """uint8 images in [0, 255] -> float32 in [-1, 1]; float data (2-D points) passes through."""
    if batch.dtype == jnp.uint8:
        return batch.astype(jnp.float32) / 127.5 - 1.0
    return batch.astype(jnp.float32)


def init_state(method: Method, rng: jax.Array) -> TrainState:
    """Every network initialised from ``rng``, optimizer states at zero, the moving average a copy of the generator."""
    variables = method.init_variables(rng)
    nets = {}
    for name, network in method.networks.items():
        params, collections = variables[name]["params"], {k: v for k, v in variables[name].items() if k != "params"}
        nets[name] = NetState(params=params, collections=collections, opt_state=network.optimizer.init(params))
    ema = jax.tree.map(jnp.copy, nets[method.generator].variables())
    return TrainState(step=jnp.zeros((), jnp.int32), nets=nets, ema=ema, aux=method.init_aux())


def _mean(values: list[dict]) -> dict:
    return {key: sum(v[key] for v in values) / len(values) for key in values[0]}


def train_step(
    method: Method, state: TrainState, batch: dict, active: tuple[str, ...], constrain: Callable = lambda x: x
) -> tuple[TrainState, dict]:
    """Runs the ``active`` phases of ``method`` on ``batch`` (leading axis: ``method.real_batches`` real batches).

    Returns the new state and the step's metrics (each phase's averaged over its repeats).
    """
    key = jax.random.fold_in(jax.random.key(method.seed), state.step)
    metrics = {}
    for index, phase in enumerate(method.phases):
        if phase.name not in active:
            continue
        network = method.networks[phase.network]
        repeats = []
        for r in range(phase.repeats):  # unrolled: XLA:CPU runs convolutions inside a scan loop ~20x slower
            inputs = PhaseInputs(
                nets=state.nets,
                aux=state.aux,
                batch=jax.tree.map(lambda x, r=r: x[r % method.real_batches], batch),
                rng=jax.random.fold_in(jax.random.fold_in(key, index), r),
                constrain=constrain,
            )
            net = state.nets[phase.network]
            (loss, out), grads = jax.value_and_grad(phase.loss, has_aux=True)(net.params, inputs)
            updates, opt_state = network.optimizer.update(grads, net.opt_state, net.params)
            params = optax.apply_updates(net.params, updates)
            if network.project is not None:
                params = network.project(params)
            nets = {
                name: s.replace(collections=out.collections.get(name, s.collections)) for name, s in state.nets.items()
            }
            nets[phase.network] = nets[phase.network].replace(params=params, opt_state=opt_state)
            state = state.replace(nets=nets, aux={**state.aux, **out.aux})
            grad_norm = optax.tree.norm(grads)
            repeats.append({**out.metrics, f"{phase.name}_loss": loss, f"{phase.name}_grad_norm": grad_norm})
        metrics.update(_mean(repeats))
    state = method.end_of_step(state)
    return state.replace(step=state.step + 1), jax.lax.stop_gradient(metrics)


def ema_update(ema: dict, net: NetState, decay) -> dict:
    """The moving average of ``net``'s parameters with weight ``decay`` on the past; collections are copied."""
    params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema["params"], net.params)
    return {**net.collections, "params": params}
