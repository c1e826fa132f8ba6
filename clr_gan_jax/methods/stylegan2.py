"""StyleGAN2-ADA's training procedure (``method='stylegan2'``), with CLR as the official CLR-GAN code adds it.

Four phases per step, in the official order (training/training_loop.py, training/loss.py):
  g      Gmain: softplus(-D(G(z))), plus the plugins' G terms (CLR's reconstruction)
  g_reg  Greg, every train.g_reg_interval steps: the path-length penalty on batch / pl_batch_shrink, on the
         style-mixed ws, scaled by the interval; its running mean lives in ``TrainState.aux['pl_mean']``
  d      Dmain: softplus(D(G(z))) + softplus(-D(x)), plus the plugins' D terms (CLR's latent restoration)
  d_reg  Dreg, every train.d_reg_interval steps: R1 on the reals, (gamma / 2) E||grad_x D(x)||^2, plus the
         plugins' D regularisation terms (GLeaD's real reconstruction, as officially), scaled by the interval
Every G call in training mode (in the g, g_reg and d phases, and CLR's reconstruction) draws random
noise, style-mixes with probability loss.style_mixing_prob at one random cutoff per call, and moves
w_avg; the mixing's second mapping does not. Adam's lr and betas are scaled by k/(k+1) for the
lazy regularisation, with one optimizer state per network shared by its two phases, and every
gradient is sanitised (NaN -> 0, +-Inf -> +-1e5) first. After the phases, the EMA of G moves with
beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1000, images seen * ema_rampup) with a
ramp-up, and G's w_avg and noise buffers are copied to it. With ``augment.pipe`` set, D sees every
image through ADA's augmentation (R1 taken through it w.r.t. the un-augmented reals), the d and d_reg
phases add the signs of D on augmented reals to ``aux['ada']``, and p adapts (`methods.ada`). A plugin
with a decoder (GLeaD) gets, in the d and d_reg phases, the live G's upper synthesis blocks with its
parameters as constants (random noise, in training mode) and, for the fakes, G's block output at the
decoder's feature resolution from the same synthesis call.

Where this differs from the official code, on purpose: the minibatch-std groups and the path-length
mean span the global batch (the official code forms them per GPU), so 1 and 8 devices train alike;
gradients are means over the global batch (the official code sums over gradient-accumulation rounds,
which only Adam's eps can tell apart); generated labels are drawn uniformly over the classes (the
official code draws the labels of random dataset images).
"""

import dataclasses

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
    Optimization,
    Phase,
    PhaseInputs,
    PhaseOutput,
    d_phase_result,
    require_learning_rates,
    to_model_input,
)
from clr_gan_jax.models import Networks
from clr_gan_jax.objectives import Decoder, DView, GView, Plugin, codes_of, decoder_of, plugin_rng
from clr_gan_jax.state import TrainState


@dataclasses.dataclass(frozen=True)
class StyleGAN2Losses:
    """The four phase losses, the latent sampler and the generate function, over plain hyperparameters."""

    generator: nn.Module
    discriminator: nn.Module
    plugins: tuple[Plugin, ...]
    z_dim: int
    num_ws: int
    num_classes: int = 0
    r1_gamma: float = 10.0
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9
    g_reg_interval: int = 4
    d_reg_interval: int = 16
    ada: ada_lib.Ada = ada_lib.Ada()
    decoder: Decoder | None = None

    def sample_latents(self, rng: jax.Array, n: int) -> dict[str, jax.Array]:
        z_rng, label_rng = jax.random.split(rng)
        latents = {"z": jax.random.normal(z_rng, (n, self.z_dim), jnp.float32)}
        if self.num_classes:
            latents["labels"] = jax.random.randint(label_rng, (n,), 0, self.num_classes)
        return latents

    def generate(self, variables: dict, latents: dict, rng: jax.Array | None = None, **options) -> jax.Array:
        """G for inference: random noise from ``rng`` (the official metrics' mode), constant noise without one.

        ``options`` go to the generator (truncation_psi, truncation_cutoff, noise_mode). Latents with 'ws' (from
        `interpolation_latents`) skip the mapping network, and with it the truncation options.
        """
        options = {"noise_mode": "random" if rng is not None else "const", **options}
        rngs = {"noise": rng} if rng is not None else None
        if "ws" in latents:
            return self.generator.apply(
                variables, latents["ws"], method="synthesis", rngs=rngs, noise_mode=options["noise_mode"]
            )
        return self.generator.apply(variables, latents["z"], latents.get("labels"), rngs=rngs, **options)

    def interpolation_latents(self, variables: dict, latents: dict, **options) -> dict:
        """{'ws': the mapped (and truncated, as ``options`` say) latents}: StyleGAN2 interpolates in W."""
        truncation = {k: v for k, v in options.items() if k.startswith("truncation_")}
        return {
            "ws": self.generator.apply(variables, latents["z"], latents.get("labels"), method="mapping", **truncation)
        }

    def mixed_ws(self, g: Apply, latents: dict, rng: jax.Array) -> jax.Array:
        """ws of the latents (moving w_avg), the layers from a random cutoff on taken from a second latent."""
        z, labels = latents["z"], latents.get("labels")
        ws = g(z, labels, method="mapping", update_w_avg=True)
        if self.style_mixing_prob <= 0:
            return ws
        mix_rng, cutoff_rng, z_rng = jax.random.split(rng, 3)
        cutoff = jax.random.randint(cutoff_rng, (), 1, self.num_ws)
        cutoff = jnp.where(jax.random.uniform(mix_rng) < self.style_mixing_prob, cutoff, self.num_ws)
        other = g(jax.random.normal(z_rng, z.shape, z.dtype), labels, method="mapping", update_w_avg=False)
        return jnp.where((jnp.arange(self.num_ws) < cutoff)[None, :, None], ws, other)

    def run_g(self, g: Apply, latents: dict, rng: jax.Array, feature_res: int | None = None):
        """G(z) as the official run_G: style mixing, random noise (from g's rng), w_avg moved; with
        ``feature_res``, (G(z), G's block output at that resolution)."""
        ws = self.mixed_ws(g, latents, rng)
        return g(ws, method="synthesis", noise_mode="random", train=True, feature_res=feature_res)

    def g_decoder(self, g: Apply):
        """GLeaD's ``decode(ws, feature_map, image)``: g's synthesis blocks above the feature map's resolution."""
        return lambda ws, feature, image: g(
            ws, feature, image, method="synthesis_from", noise_mode="random", train=True
        )

    def run_d(self, d: ada_lib.Shown, images: jax.Array, labels) -> dict:
        return d(images, labels)

    def _networks(
        self, inputs: PhaseInputs, trained: str, params, rng: jax.Array | None
    ) -> tuple[Apply, ada_lib.Shown]:
        """(G, D) as one phase sees them: the trained one with ``params``; G keeps its w_avg moves, D is plain
        (behind the augmentation with ADA)."""
        g_state, d_state = inputs.nets["g"], inputs.nets["d"]
        g_params = params if trained == "g" else g_state.params
        d_params = params if trained == "d" else d_state.params
        g = Apply(self.generator, g_params, g_state.collections, rng=rng, trainable=trained == "g")
        d = Apply(self.discriminator, d_params, d_state.collections, trainable=trained == "d")
        return g, self.ada.discriminator(d, inputs.aux, inputs.rng)

    def _reals(self, inputs: PhaseInputs):
        labels = inputs.batch["label"] if self.num_classes else None
        return to_model_input(inputs.batch["image"]), labels

    def g_main(self, params, inputs: PhaseInputs):
        latent_rng, mix_rng, noise_rng, rec_rng = jax.random.split(inputs.rng, 4)
        real, real_labels = self._reals(inputs)
        latents = inputs.constrain(self.sample_latents(latent_rng, real.shape[0]))
        g, d = self._networks(inputs, "g", params, noise_rng)
        fake = self.run_g(g, latents, mix_rng)
        fake_out = self.run_d(d, fake, latents.get("labels"))
        terms = {"g_adv": jax.nn.softplus(-fake_out["logits"]).mean()}
        view = GView(
            real=real,
            labels=real_labels,
            fake=fake,
            fake_out=fake_out,
            latents=latents,
            generator=lambda latents: self.run_g(g, latents, rec_rng),
            discriminator=lambda x, labels: self.run_d(d, x, labels),
            rng=plugin_rng(inputs.rng),
        )
        for plugin in self.plugins:
            terms.update(plugin.g_terms(view))
        return sum(terms.values()), PhaseOutput(metrics=terms, collections={"g": g.collections})

    def g_reg(self, params, inputs: PhaseInputs):
        """The path-length penalty; its running mean, not stopped inside the penalty (as officially), goes to aux."""
        latent_rng, mix_rng, noise_rng, pl_rng = jax.random.split(inputs.rng, 4)
        real, _ = self._reals(inputs)
        latents = inputs.constrain(self.sample_latents(latent_rng, real.shape[0] // self.pl_batch_shrink))
        g, _ = self._networks(inputs, "g", params, noise_rng)
        ws = self.mixed_ws(g, latents, mix_rng)
        images, vjp = g.vjp(ws, method="synthesis", noise_mode="random", train=True)
        pl_noise = jax.random.normal(pl_rng, images.shape) / jnp.sqrt(images.shape[1] * images.shape[2])
        (ws_grads,) = vjp(pl_noise)
        pl_lengths = jnp.sqrt(jnp.square(ws_grads).sum(axis=2).mean(axis=1))
        pl_mean = inputs.aux["pl_mean"] + self.pl_decay * (pl_lengths.mean() - inputs.aux["pl_mean"])
        penalty = jnp.square(pl_lengths - pl_mean).mean() * self.pl_weight
        metrics = {"g_pl": penalty, "pl_mean": pl_mean}
        aux = {"pl_mean": jax.lax.stop_gradient(pl_mean)}
        return penalty * self.g_reg_interval, PhaseOutput(metrics=metrics, collections={"g": g.collections}, aux=aux)

    def d_main(self, params, inputs: PhaseInputs):
        latent_rng, mix_rng, noise_rng = jax.random.split(inputs.rng, 3)
        real, real_labels = self._reals(inputs)
        latents = inputs.constrain(self.sample_latents(latent_rng, real.shape[0]))
        g, d = self._networks(inputs, "d", params, noise_rng)
        generated = self.run_g(g, latents, mix_rng, self.decoder.feature_resolution if self.decoder else None)
        fake, fake_g_feature = jax.lax.stop_gradient(generated if self.decoder else (generated, None))
        fake_out = self.run_d(d, fake, latents.get("labels"))
        real_out = self.run_d(d, real, real_labels)
        terms = {"d_adv": jax.nn.softplus(fake_out["logits"]).mean() + jax.nn.softplus(-real_out["logits"]).mean()}
        view = DView(
            real=real,
            fake=fake,
            real_out=real_out,
            fake_out=fake_out,
            latents=latents,
            labels=real_labels,
            fake_g_feature=fake_g_feature,
            decode=self.g_decoder(g) if self.decoder else None,
            discriminator=lambda x, labels: self.run_d(d, x, labels),
            rng=plugin_rng(inputs.rng),
        )
        return d_phase_result(terms, view, self.plugins, self.ada, inputs.aux, {"g": g.collections})

    def d_reg(self, params, inputs: PhaseInputs):
        real, real_labels = self._reals(inputs)
        g, d = self._networks(inputs, "d", params, jax.random.fold_in(inputs.rng, 1) if self.decoder else None)
        real_out, input_grads = d.with_input_grad(real, real_labels)
        terms = {"d_r1": 0.5 * self.r1_gamma * jnp.square(input_grads).reshape(real.shape[0], -1).sum(axis=1).mean()}
        view = DView(
            real=real,
            fake=None,
            real_out=real_out,
            fake_out=None,
            latents={},
            labels=real_labels,
            decode=self.g_decoder(g) if self.decoder else None,
        )
        for plugin in self.plugins:
            terms = terms | plugin.d_reg_terms(view)
        aux = self.ada.observe(inputs.aux, real_out["logits"])  # the official loop counts these signs too
        return sum(terms.values()) * self.d_reg_interval, PhaseOutput(metrics=terms, aux=aux)


@METHODS.register("stylegan2")
def build(
    config: ml_collections.ConfigDict, networks: Networks, plugins: tuple[Plugin, ...], example_shape: tuple[int, ...]
) -> Method:
    t, o, loss, m = config.train, config.optim, config.loss, config.model
    require(m.arch == "stylegan2", f"method='stylegan2' needs model.arch='stylegan2', got {m.arch!r}")
    require(codes_of(plugins) is None, "latent codes for G (infogan.enabled) need method='gan'")
    for name in ("g_reg_interval", "d_reg_interval"):
        require_number(f"train.{name}", t[name], at_least=1, integer=True)
    require_number("train.ema_kimg", t.ema_kimg, at_least=0)
    require_number("train.ema_rampup", t.ema_rampup, at_least=0)
    require_number("loss.r1_gamma", loss.r1_gamma, at_least=0)
    require_number("loss.pl_weight", loss.pl_weight, at_least=0)
    require_number("loss.pl_batch_shrink", loss.pl_batch_shrink, at_least=1, integer=True)
    require_number("loss.pl_decay", loss.pl_decay, at_least=0, below=1)
    require_number("loss.style_mixing_prob", loss.style_mixing_prob, at_least=0)
    require(loss.style_mixing_prob <= 1, f"loss.style_mixing_prob must be <= 1, got {loss.style_mixing_prob}")
    require(
        t.batch_size // loss.pl_batch_shrink >= 1,
        f"train.batch_size={t.batch_size} / loss.pl_batch_shrink={loss.pl_batch_shrink} leaves no path-length batch",
    )
    require_learning_rates(config)
    require(
        decoder_of(plugins) is None or not config.augment.pipe,
        "GLeaD with ADA (augment.pipe) is not supported: the official code augments G's feature maps together with "
        "the images, which this port does not; use augment.pipe=''",
    )
    losses = StyleGAN2Losses(
        generator=networks.generator,
        discriminator=networks.discriminator,
        plugins=plugins,
        z_dim=m.z_dim,
        num_ws=networks.generator.num_ws_for(example_shape[0]),
        num_classes=m.num_classes,
        r1_gamma=float(loss.r1_gamma),
        pl_weight=float(loss.pl_weight),
        pl_batch_shrink=loss.pl_batch_shrink,
        pl_decay=float(loss.pl_decay),
        style_mixing_prob=float(loss.style_mixing_prob),
        g_reg_interval=t.g_reg_interval,
        d_reg_interval=t.d_reg_interval,
        ada=ada_lib.build(config.augment, t.batch_size, example_shape),
        decoder=decoder_of(plugins),
    )
    phases = [Phase("g", "g", losses.g_main)]
    if loss.pl_weight > 0:
        phases.append(Phase("g_reg", "g", losses.g_reg, every=t.g_reg_interval))
    phases.append(Phase("d", "d", losses.d_main))
    if loss.r1_gamma > 0:
        phases.append(Phase("d_reg", "d", losses.d_reg, every=t.d_reg_interval))

    def init_variables(rng):
        g_rng, d_rng = jax.random.split(rng)
        latents = losses.sample_latents(jax.random.key(0), 1)
        return {
            "g": networks.generator.init(g_rng, latents["z"], latents.get("labels")),
            "d": networks.discriminator.init(d_rng, jnp.zeros((1, *example_shape), jnp.float32), latents.get("labels")),
        }

    def end_of_step(state: TrainState) -> TrainState:
        """ADA's p adjusted when due; the EMA of G with the official half-life and ramp-up, G's buffers copied."""
        state = losses.ada.end_of_step(state)
        seen = state.step.astype(jnp.float32) * t.batch_size
        ema_nimg = t.ema_kimg * 1000.0
        if t.ema_rampup > 0:
            ema_nimg = jnp.minimum(ema_nimg, seen * t.ema_rampup)
        beta = 0.5 ** (t.batch_size / jnp.maximum(ema_nimg, 1e-8))
        g = state.nets["g"]
        params = jax.tree.map(lambda e, p: p + beta * (e - p), state.ema["params"], g.params)
        return state.replace(ema={**g.collections, "params": params})

    def describe(config: ml_collections.ConfigDict) -> Optimization:
        """Adam scaled for lazy regularisation; the EMA's decay per step from its half-life ema_kimg."""
        t, o = config.train, config.optim
        optimizers = {
            net: {"name": "adam", **optim.lazy_regularized_hyperparameters(o, lr, interval)}
            for net, lr, interval in (("g", o.g_lr, t.g_reg_interval), ("d", o.d_lr, t.d_reg_interval))
        }
        ema_decay = 0.5 ** (t.batch_size / max(t.ema_kimg * 1000.0, 1e-8))
        return Optimization(optimizers=optimizers, ema_decay=ema_decay, ema_rampup=t.ema_rampup)

    return Method(
        networks={
            "g": Network(networks.generator, optim.lazy_regularized_adam(o, o.g_lr, t.g_reg_interval)),
            "d": Network(networks.discriminator, optim.lazy_regularized_adam(o, o.d_lr, t.d_reg_interval)),
        },
        phases=tuple(phases),
        init_variables=init_variables,
        sample_latents=losses.sample_latents,
        generate=losses.generate,
        interpolation_latents=losses.interpolation_latents,
        end_of_step=end_of_step,
        seed=config.seed,
        generate_options=("truncation_psi", "truncation_cutoff", "noise_mode"),
        init_aux=lambda: {"pl_mean": jnp.zeros((), jnp.float32), **losses.ada.init_aux()},
        describe=describe,
    )
