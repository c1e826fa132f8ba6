"""Pure D and G updates, and the jitted train step that runs n_critic D updates then one G update.

Each network's loss is a function of both parameter sets. The CLR terms are routed
by stop_gradient inside the losses, not only by which gradient a step takes:
restoration reads G(z) through stop_gradient (it can only train D), reconstruction
reads phi(x) through stop_gradient (it can only train G).
"""

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from clr_gan_jax import losses
from clr_gan_jax.state import NetState, TrainState


@dataclasses.dataclass(frozen=True)
class GAN:
    """The modules, optimizers and plain hyperparameters a step closes over."""

    generator: Any
    discriminator: Any
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: losses.LossConfig
    z_dim: int
    ema_decay: float
    n_critic: int
    seed: int


def to_model_input(batch: jax.Array) -> jax.Array:
    """uint8 images in [0, 255] -> float32 in [-1, 1]; float data (2-D points) passes through."""
    if batch.dtype == jnp.uint8:
        return batch.astype(jnp.float32) / 127.5 - 1.0
    return batch.astype(jnp.float32)


def apply_train(module, variables: dict, x: jax.Array):
    """Applies a module in training mode; returns (output, updated BatchNorm statistics)."""
    out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    return out, updates.get("batch_stats", {})


def d_loss_fn(gan: GAN, d_params, d_stats, g_vars: dict, real: jax.Array, z: jax.Array):
    """L_D = adversarial + R1 (if r1_gamma > 0) + latent restoration (if CLR). Returns (loss, (stats, terms))."""
    cfg = gan.loss
    fake, _ = apply_train(gan.generator, g_vars, z)
    fake = jax.lax.stop_gradient(fake)

    def d_on_real(x):
        (logits, _), stats = apply_train(gan.discriminator, {"params": d_params, "batch_stats": d_stats}, x)
        return logits, stats

    terms = {}
    if cfg.r1_gamma > 0:
        real_logits, real_vjp, d_stats = jax.vjp(d_on_real, real, has_aux=True)
        (input_grads,) = real_vjp(jnp.ones_like(real_logits))
        terms["d_r1"] = losses.r1_penalty(cfg.r1_gamma, input_grads)
    else:
        real_logits, d_stats = d_on_real(real)
    (fake_logits, fake_phi), d_stats = apply_train(gan.discriminator, {"params": d_params, "batch_stats": d_stats}, fake)
    terms["d_adv"] = losses.d_adversarial(cfg.adversarial, real_logits, fake_logits)
    if cfg.clr:
        terms["d_clr"] = losses.latent_restoration(cfg, z, fake_phi)
    total = sum(terms.values())
    diagnostics = {"d_loss": total, "d_real_logit": real_logits.mean(), "d_fake_logit": fake_logits.mean()}
    return total, (d_stats, terms | jax.lax.stop_gradient(diagnostics))


def g_loss_fn(gan: GAN, g_params, g_stats, d_vars: dict, real: jax.Array, z: jax.Array):
    """L_G = adversarial + reconstruction (if CLR). D is frozen: its BatchNorm updates are discarded."""
    cfg = gan.loss
    fake, g_stats = apply_train(gan.generator, {"params": g_params, "batch_stats": g_stats}, z)
    (fake_logits, _), _ = apply_train(gan.discriminator, d_vars, fake)
    terms = {"g_adv": losses.g_adversarial(cfg.adversarial, fake_logits)}
    if cfg.clr:
        (_, real_phi), _ = apply_train(gan.discriminator, d_vars, real)
        reconstructed, g_stats = apply_train(
            gan.generator, {"params": g_params, "batch_stats": g_stats}, jax.lax.stop_gradient(real_phi)
        )
        terms["g_rec"] = losses.reconstruction(cfg, real, reconstructed)
    total = sum(terms.values())
    return total, (g_stats, terms | {"g_loss": jax.lax.stop_gradient(total)})


def _update(tx: optax.GradientTransformation, net: NetState, grads, batch_stats) -> NetState:
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    return NetState(params=optax.apply_updates(net.params, updates), batch_stats=batch_stats, opt_state=opt_state)


def sample_latents(gan: GAN, rng: jax.Array, batch_size: int, sharding=None) -> jax.Array:
    z = jax.random.normal(rng, (batch_size, gan.z_dim), jnp.float32)
    return z if sharding is None else jax.lax.with_sharding_constraint(z, sharding)


def _train_net(loss_fn, gan: GAN, tx, net: NetState, other_variables: dict, real, z, norm_name: str):
    """One optimizer update of ``net`` on the gradient of ``loss_fn`` w.r.t. its params (the other net fixed)."""
    grad_fn = jax.grad(loss_fn, argnums=1, has_aux=True)
    grads, (batch_stats, terms) = grad_fn(gan, net.params, net.batch_stats, other_variables, real, z)
    return _update(tx, net, grads, batch_stats), {**terms, norm_name: optax.tree.norm(grads)}


def d_step(gan: GAN, state: TrainState, real: jax.Array, rng: jax.Array, sharding=None):
    """One D update on a real batch and fresh latents."""
    real = to_model_input(real)
    z = sample_latents(gan, rng, real.shape[0], sharding)
    d, terms = _train_net(d_loss_fn, gan, gan.d_tx, state.d, state.g.variables(), real, z, "d_grad_norm")
    return state.replace(d=d), terms


def g_step(gan: GAN, state: TrainState, real: jax.Array, rng: jax.Array, sharding=None):
    """One G update (reals feed the reconstruction term), then the EMA update of G."""
    real = to_model_input(real)
    z = sample_latents(gan, rng, real.shape[0], sharding)
    g, terms = _train_net(g_loss_fn, gan, gan.g_tx, state.g, state.d.variables(), real, z, "g_grad_norm")
    decay = gan.ema_decay
    ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema["params"], g.params)
    ema = {"params": ema_params, "batch_stats": g.batch_stats}
    return state.replace(g=g, ema=ema, step=state.step + 1), terms


def train_step(gan: GAN, state: TrainState, reals: jax.Array, sharding=None):
    """n_critic D updates, one per slice of ``reals`` (n_critic, B, ...), then one G update on the last slice.

    Randomness is a function of (seed, step), so a resumed run draws the same latents.
    Returns the new state and the step's metrics (D terms averaged over the D updates).
    """
    rng = jax.random.fold_in(jax.random.key(gan.seed), state.step)
    d_terms = []
    for i in range(gan.n_critic):  # unrolled: XLA:CPU runs convolutions inside a scan loop ~20x slower
        state, terms = d_step(gan, state, reals[i], jax.random.fold_in(rng, i), sharding)
        d_terms.append(terms)
    state, g_terms = g_step(gan, state, reals[-1], jax.random.fold_in(rng, gan.n_critic), sharding)
    d_terms = jax.tree.map(lambda *values: sum(values) / len(values), *d_terms)
    return state, d_terms | g_terms


def make_generate(generator) -> Callable:
    """G in inference mode (BatchNorm running statistics): (variables, z) -> samples."""
    return lambda variables, z: generator.apply(variables, z, train=False)
