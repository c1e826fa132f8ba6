"""The GAN zoo's procedure (``method='gan'``): n_critic D updates, each on its own real batch, then one G update.

D's loss: the adversarial loss on reals and fresh fakes G(z) (G frozen), plus the R1 penalty
on reals (``loss.r1_gamma``), WGAN-GP's penalty on interpolates (``loss.gp_weight``) and the
plugins' D terms. G's loss: the adversarial loss on fresh fakes through a frozen D, plus the
plugins' G terms (RealnessGAN's objective 3 also reads D's logits on the reals there; its D gives
model.d_outputs logits per example, which R1, WGAN-GP and ADA do not take). Every D update draws its own latents
and so does the G update. After the
G update the moving average of G is updated with ``train.ema_decay`` (0 keeps a copy of G).
With ``optim.d_clip`` > 0, every D parameter is clipped to [-d_clip, d_clip] after each D
update (WGAN). BatchNorm runs in training mode in every phase; a network's statistics are
only updated by the phase that trains it (and by the plugins' calls of G in G's phase).
With ``augment.pipe`` set, D sees every image through ADA's augmentation, R1 and WGAN-GP are taken
through it with respect to the un-augmented images, and p adapts once per ``augment.interval`` steps
(`methods.ada`).

A conditional model (``model.num_classes`` > 0) reads the reals' labels from the batch. As in the
zoo's CGAN and ACGAN scripts, D's fakes are drawn with the labels of its real batch (so D sees the
same classes real and fake, and WGAN-GP's interpolates keep one label), and G's with labels drawn
uniformly; the latents carry the fakes' labels ('labels'), the plugins' views the reals'.

A plugin's latent codes (InfoGAN's, `objectives.plugin.LatentCodes`) are drawn beside z into 'codes', and G
reads [z, codes] as its input vector. G's own regulariser (``Networks.g_penalty``: EigenGAN's orthogonality
of its bases) is added to G's loss.
"""

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from clr_gan_jax import optim
from clr_gan_jax.errors import require, require_number
from clr_gan_jax.methods import ada as ada_lib
from clr_gan_jax.methods.base import (
    METHODS,
    Apply,
    Method,
    Network,
    Phase,
    PhaseInputs,
    PhaseOutput,
    d_phase_result,
    ema_update,
    require_zoo_loop,
    to_model_input,
)
from clr_gan_jax.models import Networks
from clr_gan_jax.objectives import (
    ADVERSARIAL,
    Adversarial,
    DView,
    GView,
    LatentCodes,
    Plugin,
    codes_of,
    decoder_of,
    penalties,
    plugin_rng,
)
from clr_gan_jax.state import TrainState


@dataclasses.dataclass(frozen=True)
class ZooLosses:
    """The two phase losses and the latent sampler, closed over the networks and plain hyperparameters."""

    generator: nn.Module
    discriminator: nn.Module
    adversarial: Adversarial
    plugins: tuple[Plugin, ...]
    z_dim: int
    num_classes: int = 0
    r1_gamma: float = 0.0
    gp_weight: float = 0.0
    gp_interpolation: str = "per_sample"
    ada: ada_lib.Ada = ada_lib.Ada()
    codes: LatentCodes | None = None
    g_penalty: Callable[[dict], dict[str, jax.Array]] | None = None

    def sample_latents(self, rng: jax.Array, n: int) -> dict[str, jax.Array]:
        if not self.num_classes and self.codes is None:
            return {"z": jax.random.normal(rng, (n, self.z_dim), jnp.float32)}
        z_rng, label_rng, *code_rng = jax.random.split(rng, 2 if self.codes is None else 3)
        latents = {"z": jax.random.normal(z_rng, (n, self.z_dim), jnp.float32)}
        if self.num_classes:
            latents["labels"] = jax.random.randint(label_rng, (n,), 0, self.num_classes)
        if self.codes is not None:
            latents["codes"] = self.codes.sample(code_rng[0], n)
        return latents

    def g_input(self, latents: dict[str, jax.Array]) -> jax.Array:
        """G's input vector: z, with the plugin's codes appended."""
        return jnp.concatenate([latents["z"], latents["codes"]], axis=-1) if "codes" in latents else latents["z"]

    def infer_codes(self, d_outputs: dict) -> dict[str, jax.Array]:
        return {"codes": self.codes.infer(d_outputs)} if self.codes is not None else {}

    def _reals(self, inputs: PhaseInputs) -> tuple[jax.Array, jax.Array | None]:
        labels = inputs.batch["label"] if self.num_classes else None
        return to_model_input(inputs.batch["image"]), labels

    def generate(self, variables: dict, latents: dict, rng: jax.Array | None = None) -> jax.Array:
        del rng  # the zoo's generators are deterministic
        return self.generator.apply(variables, self.g_input(latents), latents.get("labels"), train=False)

    def d_loss(self, params, inputs: PhaseInputs):
        latent_rng, penalty_rng = jax.random.split(inputs.rng)
        real, labels = self._reals(inputs)
        latents = self.sample_latents(latent_rng, real.shape[0])
        if labels is not None:
            latents["labels"] = labels
        latents = inputs.constrain(latents)
        g = Apply(
            self.generator, inputs.nets["g"].params, inputs.nets["g"].collections, trainable=False, keep_updates=False
        )
        fake = jax.lax.stop_gradient(g(self.g_input(latents), labels))
        d = Apply(self.discriminator, params, inputs.nets["d"].collections)
        shown = self.ada.discriminator(d, inputs.aux, inputs.rng)  # d itself without ADA
        terms = {}
        if self.r1_gamma > 0:
            real_out, input_grads = shown.with_input_grad(real, labels)
            terms["d_r1"] = penalties.r1(input_grads, self.r1_gamma)
        else:
            real_out = shown(real, labels)
        fake_out = shown(fake, labels)
        terms["d_adv"] = self.adversarial.d(real_out["logits"], fake_out["logits"])
        if self.gp_weight > 0:
            interpolates = penalties.interpolate(real, fake, penalty_rng, self.gp_interpolation)
            _, input_grads = shown.with_input_grad(interpolates, labels)
            terms["d_gp"] = penalties.gradient_penalty(input_grads, self.gp_weight)
        view = DView(
            real=real,
            fake=fake,
            real_out=real_out,
            fake_out=fake_out,
            latents=latents,
            labels=labels,
            discriminator=shown,
            rng=plugin_rng(inputs.rng),
        )
        return d_phase_result(terms, view, self.plugins, self.ada, inputs.aux, {"d": d.collections})

    def g_loss(self, params, inputs: PhaseInputs):
        real, labels = self._reals(inputs)
        latents = inputs.constrain(self.sample_latents(inputs.rng, real.shape[0]))
        g = Apply(self.generator, params, inputs.nets["g"].collections)
        d = Apply(
            self.discriminator,
            inputs.nets["d"].params,
            inputs.nets["d"].collections,
            trainable=False,
            keep_updates=False,
        )
        shown = self.ada.discriminator(d, inputs.aux, inputs.rng)
        fake = g(self.g_input(latents), latents.get("labels"))
        fake_out = shown(fake, latents.get("labels"))
        real_logits = shown(real, labels)["logits"] if self.adversarial.g_reads_real else None
        terms = {"g_adv": self.adversarial.g(fake_out["logits"], real_logits)}
        if self.g_penalty is not None:
            terms.update(self.g_penalty(params))
        view = GView(
            real=real,
            labels=labels,
            fake=fake,
            fake_out=fake_out,
            latents=latents,
            generator=lambda latents: g(self.g_input(latents), latents.get("labels")),
            discriminator=shown,
            rng=plugin_rng(inputs.rng),
            infer_codes=self.infer_codes,
        )
        for plugin in self.plugins:
            terms.update(plugin.g_terms(view))
        return sum(terms.values()), PhaseOutput(metrics=terms, collections={"g": g.collections})


@METHODS.register("gan")
def build(
    config: ml_collections.ConfigDict, networks: Networks, plugins: tuple[Plugin, ...], example_shape: tuple[int, ...]
) -> Method:
    t, o, loss = config.train, config.optim, config.loss
    require(decoder_of(plugins) is None, "GLeaD (glead.enabled) needs method='stylegan2'")
    require_zoo_loop(config)
    require_number("loss.r1_gamma", loss.r1_gamma, at_least=0)
    require_number("loss.gp_weight", loss.gp_weight, at_least=0)
    require(
        loss.gp_interpolation in penalties.INTERPOLATIONS,
        f"loss.gp_interpolation must be one of {penalties.INTERPOLATIONS}, got {loss.gp_interpolation!r}",
    )
    require_number("optim.d_clip", o.d_clip, at_least=0)
    adversarial = ADVERSARIAL.get(loss.adversarial)(config)
    require(
        config.model.d_outputs == adversarial.outputs,
        f"loss.adversarial={loss.adversarial!r} reads {adversarial.outputs} D output(s) per example; "
        f"set model.d_outputs={adversarial.outputs}, got {config.model.d_outputs!r}",
    )
    require(
        config.model.d_outputs == 1 or (loss.r1_gamma == 0 and loss.gp_weight == 0 and not config.augment.pipe),
        "model.d_outputs > 1: R1, WGAN-GP (loss.r1_gamma, loss.gp_weight) and ADA (augment.pipe) read D's one logit; "
        "set them to 0 and ''",
    )
    losses = ZooLosses(
        generator=networks.generator,
        discriminator=networks.discriminator,
        adversarial=adversarial,
        plugins=plugins,
        z_dim=config.model.z_dim,
        num_classes=config.model.num_classes,
        r1_gamma=float(loss.r1_gamma),
        gp_weight=float(loss.gp_weight),
        gp_interpolation=loss.gp_interpolation,
        ada=ada_lib.build(config.augment, t.n_critic * t.batch_size, example_shape),
        codes=codes_of(plugins),
        g_penalty=networks.g_penalty,
    )

    def init_variables(rng):
        g_rng, d_rng = jax.random.split(rng)
        code_width = losses.codes.width if losses.codes is not None else 0
        z = jnp.zeros((1, config.model.z_dim + code_width), jnp.float32)
        labels = jnp.zeros((1,), jnp.int32) if config.model.num_classes else None
        return {
            "g": networks.generator.init(g_rng, z, labels, train=False),
            "d": networks.discriminator.init(d_rng, jnp.zeros((1, *example_shape), jnp.float32), labels, train=False),
        }

    def traversal(columns: int, sweep: jax.Array) -> list:
        """The codes' rows, then those of a generator with per-layer coordinates (EigenGAN)."""
        rows = losses.codes.traversal(columns, sweep) if losses.codes is not None else []
        return rows + (networks.traversal(columns, sweep) if networks.traversal is not None else [])

    def end_of_step(state: TrainState) -> TrainState:
        state = losses.ada.end_of_step(state)
        return state.replace(ema=ema_update(state.ema, state.nets["g"], t.ema_decay))

    return Method(
        networks={
            "g": Network(networks.generator, optim.build(o, o.g_lr)),
            "d": Network(
                networks.discriminator,
                optim.build(o, o.d_lr),
                project=optim.clip_parameters(o.d_clip) if o.d_clip > 0 else None,
            ),
        },
        phases=(
            Phase("d", network="d", loss=losses.d_loss, repeats=t.n_critic),
            Phase("g", network="g", loss=losses.g_loss),
        ),
        init_variables=init_variables,
        sample_latents=losses.sample_latents,
        generate=losses.generate,
        end_of_step=end_of_step,
        seed=config.seed,
        real_batches=t.n_critic,
        init_aux=losses.ada.init_aux,
        traversal=traversal,
    )
