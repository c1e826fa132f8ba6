"""VEEGAN (Srivastava et al., NeurIPS 2017) as the GAN zoo trains it (``method='veegan'``): G, a reconstructor F
and a joint D on (x, z) pairs.

  D (n_critic updates, each on its own real batch):
      d_adv = (BCE(D(G(z), z), 1) + BCE(D(x, F(x) + s e), 0)) / 2         e ~ N(0, I), s = veegan.latent_noise
  G:  g_adv = mean D(G(z), z),  g_latent_rec = w_rec * MSE(F(G(z)), z)    D and F frozen
  F:  f_latent_rec = w_rec * MSE(F(G(z)), z)                             G frozen

The zoo labels the generator's pairs 1, so they play the reals' part in the vanilla D loss, and G minimises D's
raw logit on them (VEEGAN's log-density-ratio term). The zoo updates G and F from one summed loss; here they are
two phases, G's then F's, each on its own latents (F sees the G just updated). F uses G's optimizer settings
(``optim.g_lr``), as in the zoo, where all three networks share them.

With CLR (``clr.enabled``) the plugin reads D on points alone, the latent slot zero: D's phi head must restore z
from D(G(z), 0) (on the pair D(G(z), z) that would be reading z back), and G must rebuild x from phi(D(x, 0)).
These extra D calls happen only with a plugin.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from clr_gan_jax import optim
from clr_gan_jax.errors import require, require_number
from clr_gan_jax.methods.base import (
    METHODS,
    Apply,
    Method,
    Network,
    Optimization,
    Phase,
    PhaseInputs,
    PhaseOutput,
    ema_update,
    plain_optimization,
    require_zoo_loop,
    to_model_input,
)
from clr_gan_jax.models import Networks
from clr_gan_jax.models.mlp import MLPReconstructor
from clr_gan_jax.objectives import DView, GView, Plugin, decoder_of, plugin_names
from clr_gan_jax.objectives.adversarial import VANILLA
from clr_gan_jax.objectives.clr import DISTANCES
from clr_gan_jax.state import TrainState

mse = DISTANCES.get("mse")


@dataclasses.dataclass(frozen=True)
class VEEGANLosses:
    """The three phase losses, closed over the networks and plain hyperparameters."""

    generator: nn.Module
    discriminator: nn.Module  # joint: D(x, z); D(x, None) reads zeros for z
    reconstructor: nn.Module
    plugins: tuple[Plugin, ...]
    z_dim: int
    w_rec: float = 1.0
    latent_noise: float = 1.0

    def sample_latents(self, rng: jax.Array, n: int) -> dict[str, jax.Array]:
        return {"z": jax.random.normal(rng, (n, self.z_dim), jnp.float32)}

    def generate(self, variables: dict, latents: dict, rng: jax.Array | None = None) -> jax.Array:
        del rng  # deterministic
        return self.generator.apply(variables, latents["z"], train=False)

    def _frozen(self, module: nn.Module, net) -> Apply:
        return Apply(module, net.params, net.collections, trainable=False, keep_updates=False)

    def d_loss(self, params, inputs: PhaseInputs):
        latent_rng, noise_rng = jax.random.split(inputs.rng)
        real = to_model_input(inputs.batch["image"])
        latents = inputs.constrain(self.sample_latents(latent_rng, real.shape[0]))
        fake = jax.lax.stop_gradient(self._frozen(self.generator, inputs.nets["g"])(latents["z"]))
        encoded = jax.lax.stop_gradient(self._frozen(self.reconstructor, inputs.nets["f"])(real))
        encoded = encoded + self.latent_noise * jax.random.normal(noise_rng, encoded.shape, encoded.dtype)
        d = Apply(self.discriminator, params, inputs.nets["d"].collections)
        data_pairs = d(real, encoded)["logits"]
        latent_pairs = d(fake, latents["z"])["logits"]
        # the generator's pairs are labelled 1: they take the reals' place in the vanilla loss
        terms = {"d_adv": VANILLA.d(latent_pairs, data_pairs)}
        if self.plugins:
            view = DView(real=real, fake=fake, real_out=d(real), fake_out=d(fake), latents=latents, labels=None)
            for plugin in self.plugins:
                terms |= plugin.d_terms(view)
        logits = {"d_latent_pair_logit": latent_pairs.mean(), "d_data_pair_logit": data_pairs.mean()}
        return sum(terms.values()), PhaseOutput(metrics=terms | logits, collections={"d": d.collections})

    def g_loss(self, params, inputs: PhaseInputs):
        real = to_model_input(inputs.batch["image"])
        latents = inputs.constrain(self.sample_latents(inputs.rng, real.shape[0]))
        g = Apply(self.generator, params, inputs.nets["g"].collections)
        d = self._frozen(self.discriminator, inputs.nets["d"])
        fake = g(latents["z"])
        terms = {
            "g_adv": d(fake, latents["z"])["logits"].mean(),
            "g_latent_rec": self.w_rec * mse(self._frozen(self.reconstructor, inputs.nets["f"])(fake), latents["z"]),
        }
        if self.plugins:
            view = GView(
                real=real,
                labels=None,
                fake=fake,
                fake_out=d(fake),
                latents=latents,
                generator=lambda latents: g(latents["z"]),
                discriminator=lambda x, labels: d(x),
            )
            for plugin in self.plugins:
                terms |= plugin.g_terms(view)
        return sum(terms.values()), PhaseOutput(metrics=terms, collections={"g": g.collections})

    def f_loss(self, params, inputs: PhaseInputs):
        latents = inputs.constrain(self.sample_latents(inputs.rng, inputs.batch["image"].shape[0]))
        fake = jax.lax.stop_gradient(self._frozen(self.generator, inputs.nets["g"])(latents["z"]))
        f = Apply(self.reconstructor, params, inputs.nets["f"].collections)
        terms = {"f_latent_rec": self.w_rec * mse(f(fake), latents["z"])}
        return terms["f_latent_rec"], PhaseOutput(metrics=terms, collections={"f": f.collections})


@METHODS.register("veegan")
def build(
    config: ml_collections.ConfigDict, networks: Networks, plugins: tuple[Plugin, ...], example_shape: tuple[int, ...]
) -> Method:
    t, o, m, v = config.train, config.optim, config.model, config.veegan
    require(m.arch == "mlp", f"method='veegan' needs model.arch='mlp' (its joint D and F are MLPs), got {m.arch!r}")
    require(decoder_of(plugins) is None, "GLeaD (glead.enabled) needs method='stylegan2'")
    others = [name for name in plugin_names(config) if name != "clr"]
    require(not others, f"method='veegan' carries the clr plugin only; disable {others}")
    require(not config.augment.pipe, "method='veegan' does not run ADA: set augment.pipe=''")
    require_zoo_loop(config)
    require_number("veegan.w_rec", v.w_rec, at_least=0)
    require_number("veegan.latent_noise", v.latent_noise, at_least=0)
    losses = VEEGANLosses(
        generator=networks.generator,
        discriminator=networks.discriminator.clone(latent_dim=m.z_dim),
        reconstructor=MLPReconstructor(out_dim=m.z_dim, hidden=m.hidden, depth=m.depth, batch_norm=m.batch_norm),
        plugins=plugins,
        z_dim=m.z_dim,
        w_rec=float(v.w_rec),
        latent_noise=float(v.latent_noise),
    )

    def init_variables(rng):
        g_rng, d_rng, f_rng = jax.random.split(rng, 3)
        x, z = jnp.zeros((1, *example_shape), jnp.float32), jnp.zeros((1, m.z_dim), jnp.float32)
        return {
            "g": losses.generator.init(g_rng, z, train=False),
            "d": losses.discriminator.init(d_rng, x, z, train=False),
            "f": losses.reconstructor.init(f_rng, x, train=False),
        }

    def end_of_step(state: TrainState) -> TrainState:
        return state.replace(ema=ema_update(state.ema, state.nets["g"], t.ema_decay))

    def describe(config) -> Optimization:
        plain = plain_optimization(config)
        return dataclasses.replace(plain, optimizers={**plain.optimizers, "f": plain.optimizers["g"]})

    return Method(
        networks={
            "g": Network(losses.generator, optim.build(o, o.g_lr)),
            "d": Network(losses.discriminator, optim.build(o, o.d_lr)),
            "f": Network(losses.reconstructor, optim.build(o, o.g_lr)),
        },
        phases=(
            Phase("d", network="d", loss=losses.d_loss, repeats=t.n_critic),
            Phase("g", network="g", loss=losses.g_loss),
            Phase("f", network="f", loss=losses.f_loss),
        ),
        init_variables=init_variables,
        sample_latents=losses.sample_latents,
        generate=losses.generate,
        end_of_step=end_of_step,
        seed=config.seed,
        real_batches=t.n_critic,
        describe=describe,
    )
