"""Pure D and G updates, and the jitted train step that runs n_critic D updates then one G update.

The CLR terms are routed by stop_gradient inside the losses, not only by which
gradient a step takes: restoration reads G(z) through stop_gradient (it can only
train D), reconstruction reads phi(x) through stop_gradient (it can only train G).
G's adversarial gradient flows through the VJP of the G(z) pass (`generate`), which
lets the G update reuse the fakes of the last D update.
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
    reuse_fakes: bool = False


def to_model_input(batch: jax.Array) -> jax.Array:
    """uint8 images in [0, 255] -> float32 in [-1, 1]; float data (2-D points) passes through."""
    if batch.dtype == jnp.uint8:
        return batch.astype(jnp.float32) / 127.5 - 1.0
    return batch.astype(jnp.float32)


def apply_train(module, variables: dict, x: jax.Array):
    """Applies a module in training mode; returns (output, updated BatchNorm statistics)."""
    out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    return out, updates.get("batch_stats", {})


def generate(gan: GAN, g: NetState, z: jax.Array):
    """G(z) in training mode, with its VJP to G's parameters: (fake, vjp, G's updated BatchNorm statistics).

    Computing the VJP costs nothing if it is not used: XLA drops what only it would need.
    """
    return jax.vjp(lambda p: apply_train(gan.generator, {"params": p, "batch_stats": g.batch_stats}, z), g.params, has_aux=True)


def d_loss_fn(gan: GAN, d_params, d_stats, real: jax.Array, fake: jax.Array, z: jax.Array):
    """L_D = adversarial + R1 (if r1_gamma > 0) + latent restoration (if CLR) on reals and fakes G(z).

    Returns (loss, (stats, terms)).
    """
    cfg = gan.loss
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


def g_adversarial_loss(gan: GAN, fake: jax.Array, d_vars: dict):
    """G's adversarial loss as a function of its fakes; D is frozen (its BatchNorm updates are discarded)."""
    (fake_logits, _), _ = apply_train(gan.discriminator, d_vars, fake)
    return losses.g_adversarial(gan.loss.adversarial, fake_logits)


def g_reconstruction_loss(gan: GAN, g_params, g_stats, d_vars: dict, real: jax.Array):
    """The CLR reconstruction dist(x, G(phi(x))), phi(x) a constant for G. Returns (loss, G's BatchNorm stats)."""
    (_, real_phi), _ = apply_train(gan.discriminator, d_vars, real)
    real_phi = jax.lax.stop_gradient(real_phi)
    reconstructed, g_stats = apply_train(gan.generator, {"params": g_params, "batch_stats": g_stats}, real_phi)
    return losses.reconstruction(gan.loss, real, reconstructed), g_stats


def _update(tx: optax.GradientTransformation, net: NetState, grads, batch_stats) -> NetState:
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    return NetState(params=optax.apply_updates(net.params, updates), batch_stats=batch_stats, opt_state=opt_state)


def sample_latents(gan: GAN, rng: jax.Array, batch_size: int, sharding=None) -> jax.Array:
    z = jax.random.normal(rng, (batch_size, gan.z_dim), jnp.float32)
    return z if sharding is None else jax.lax.with_sharding_constraint(z, sharding)


def d_step(gan: GAN, state: TrainState, real: jax.Array, fake: jax.Array, z: jax.Array):
    """One D update on a real batch and the fakes ``fake`` = G(z)."""
    grad_fn = jax.grad(d_loss_fn, argnums=1, has_aux=True)
    grads, (batch_stats, terms) = grad_fn(gan, state.d.params, state.d.batch_stats, to_model_input(real), fake, z)
    d = _update(gan.d_tx, state.d, grads, batch_stats)
    return state.replace(d=d), {**terms, "d_grad_norm": optax.tree.norm(grads)}


def g_step(gan: GAN, state: TrainState, real: jax.Array, fake: jax.Array, fake_vjp, g_stats):
    """One G update, then the EMA update of G.

    ``fake``, ``fake_vjp`` and ``g_stats`` come from `generate` with the current G; the
    adversarial gradient reaches G's parameters through ``fake_vjp``, and reals feed the
    reconstruction term.
    """
    d_vars = state.d.variables()
    g_adv, fake_grads = jax.value_and_grad(g_adversarial_loss, argnums=1)(gan, fake, d_vars)
    (grads,) = fake_vjp(fake_grads)
    terms = {"g_adv": g_adv}
    if gan.loss.clr:
        (g_rec, g_stats), rec_grads = jax.value_and_grad(g_reconstruction_loss, argnums=1, has_aux=True)(
            gan, state.g.params, g_stats, d_vars, to_model_input(real)
        )
        grads = jax.tree.map(jnp.add, grads, rec_grads)
        terms["g_rec"] = g_rec
    g = _update(gan.g_tx, state.g, grads, g_stats)
    decay = gan.ema_decay
    ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema["params"], g.params)
    ema = {"params": ema_params, "batch_stats": g.batch_stats}
    terms |= {"g_loss": sum(terms.values()), "g_grad_norm": optax.tree.norm(grads)}
    return state.replace(g=g, ema=ema, step=state.step + 1), terms


def train_step(gan: GAN, state: TrainState, reals: jax.Array, sharding=None):
    """n_critic D updates, one per slice of ``reals`` (n_critic, B, ...), then one G update on the last slice.

    Each D update draws its own latents; the G update draws new ones, or with
    ``gan.reuse_fakes`` takes the last D update's latents and fakes, saving one G forward
    pass (G has not changed in between, so its VJP still holds).
    Randomness is a function of (seed, step), so a resumed run draws the same latents.
    Returns the new state and the step's metrics (D terms averaged over the D updates).
    """
    rng = jax.random.fold_in(jax.random.key(gan.seed), state.step)
    batch_size = reals.shape[1]
    d_terms = []
    for i in range(gan.n_critic):  # unrolled: XLA:CPU runs convolutions inside a scan loop ~20x slower
        z = sample_latents(gan, jax.random.fold_in(rng, i), batch_size, sharding)
        generated = generate(gan, state.g, z)
        state, terms = d_step(gan, state, reals[i], generated[0], z)
        d_terms.append(terms)
    if not gan.reuse_fakes:
        z = sample_latents(gan, jax.random.fold_in(rng, gan.n_critic), batch_size, sharding)
        generated = generate(gan, state.g, z)
    state, g_terms = g_step(gan, state, reals[-1], *generated)
    d_terms = jax.tree.map(lambda *values: sum(values) / len(values), *d_terms)
    return state, d_terms | g_terms


def make_generate(generator) -> Callable:
    """G in inference mode (BatchNorm running statistics): (variables, z) -> samples."""
    return lambda variables, z: generator.apply(variables, z, train=False)
