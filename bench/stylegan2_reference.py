"""The official StyleGAN2-ADA (or CLR-GAN) train step on CPU, for `bench/stylegan2_step.py`.

Nothing of the official code is copied here: `import_official` puts a local copy of the
repository first on sys.path and imports its `training.networks` and `training.loss`. A step is
one iteration of the official training loop (training/training_loop.py) with one process and
batch_gpu = batch (no gradient accumulation): the phases [Gmain, Greg, Dmain, Dreg], each run when
batch_idx % interval == 0 with gain = interval through the official loss's
``accumulate_gradients``, one Adam per network with the lazy-regularisation scaling of lr and betas,
gradients sanitised before each Adam step, then the G_ema update with its ramp-up. The real images
are the given uint8 batch; labels are empty (c_dim = 0); no augmentation pipe.
"""

import copy
import inspect
import os
import sys
import types

import ml_collections
import torch

from clr_gan_jax.errors import UserError


def import_official(repo: str, clr: bool) -> tuple[types.ModuleType, types.ModuleType]:
    """(training.networks, training.loss) of the official repository at ``repo``.

    ``clr`` says which repository the config needs: CLR-GAN's fork (its discriminator also returns
    phi) for CLR, StyleGAN2-ADA's otherwise.
    """
    repo = os.path.abspath(os.path.expanduser(repo))
    if not os.path.isfile(os.path.join(repo, "training", "loss.py")):
        raise UserError(
            f"--reference_repo={repo} has no training/loss.py: give a local copy of the official repository"
        )
    sys.path.insert(0, repo)
    from training import loss, networks  # noqa: PLC0415 (the official package, found only at run time)

    returns_phi = "latent_code" in inspect.getsource(networks.DiscriminatorEpilogue.forward)
    if returns_phi != clr:
        wanted, got = ("CLR-GAN's", "StyleGAN2-ADA's") if clr else ("StyleGAN2-ADA's", "CLR-GAN's")
        raise UserError(f"--reference_repo={repo} is {got} code; this cfg needs {wanted} (the _clr cfgs time CLR-GAN)")
    return networks, loss


def official_kwargs(config: ml_collections.ConfigDict, example_shape: tuple[int, ...]) -> dict:
    """The official train.py's G, D, loss and Adam arguments for ``config``, in float32 (num_fp16_res 0)."""
    m, loss, o = config.model, config.loss, config.optim
    resolution, _, channels = example_shape
    common = {"c_dim": 0, "img_resolution": resolution, "img_channels": channels}
    layers = {"channel_base": m.channel_base, "channel_max": m.channel_max, "num_fp16_res": 0}
    layers["conv_clamp"] = m.conv_clamp or None
    return {
        "G": {
            **common,
            "z_dim": m.z_dim,
            "w_dim": m.w_dim,
            "mapping_kwargs": {"num_layers": m.mapping_layers},
            "synthesis_kwargs": {**layers, "architecture": m.g_architecture},
        },
        "D": {
            **common,
            **layers,
            "architecture": m.d_architecture,
            "epilogue_kwargs": {"mbstd_group_size": m.mbstd_group_size},
        },
        "loss": {
            "r1_gamma": loss.r1_gamma,
            "pl_weight": loss.pl_weight,
            "pl_batch_shrink": loss.pl_batch_shrink,
            "pl_decay": loss.pl_decay,
            "style_mixing_prob": loss.style_mixing_prob,
        },
        "G_opt": {"lr": o.g_lr, "betas": [o.b1, o.b2], "eps": o.eps},
        "D_opt": {"lr": o.d_lr, "betas": [o.b1, o.b2], "eps": o.eps},
    }


class OfficialStep:
    """``step(reals)``: one official training iteration on a (B, C, H, W) uint8 batch; returns nothing."""

    def __init__(self, networks, loss, config: ml_collections.ConfigDict, example_shape: tuple[int, ...]):
        kwargs = official_kwargs(config, example_shape)
        t = config.train
        device = torch.device("cpu")
        torch.manual_seed(config.seed)
        self.G = networks.Generator(**kwargs["G"]).train().requires_grad_(False)
        self.D = networks.Discriminator(**kwargs["D"]).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = loss.StyleGAN2Loss(device, self.G.mapping, self.G.synthesis, self.D, **kwargs["loss"])
        self.phases = []
        for name, module, opt_kwargs, interval in (
            ("G", self.G, kwargs["G_opt"], t.g_reg_interval),
            ("D", self.D, kwargs["D_opt"], t.d_reg_interval),
        ):
            ratio = interval / (interval + 1)
            opt = torch.optim.Adam(
                module.parameters(),
                lr=opt_kwargs["lr"] * ratio,
                betas=[beta**ratio for beta in opt_kwargs["betas"]],
                eps=opt_kwargs["eps"],
            )
            self.phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
        self.batch_size, self.ema_kimg, self.ema_rampup = t.batch_size, t.ema_kimg, t.ema_rampup or None
        self.batch_idx = self.cur_nimg = 0

    def settings(self) -> str:
        """The networks' sizes, for the printed settings."""
        count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        return f"official G {count(self.G) / 1e6:.2f}M, D {count(self.D) / 1e6:.2f}M parameters"

    def __call__(self, reals: torch.Tensor):
        batch = self.batch_size
        real_img = reals.to(torch.float32) / 127.5 - 1
        real_c = torch.zeros([batch, 0])
        all_gen_z = torch.randn([len(self.phases) * batch, self.G.z_dim]).split(batch)
        gen_c = torch.zeros([batch, 0])
        for (name, module, opt, interval), gen_z in zip(self.phases, all_gen_z, strict=True):
            if self.batch_idx % interval != 0:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(name, real_img, real_c, gen_z, gen_c, sync=True, gain=interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.ema_rampup)
        ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                b_ema.copy_(b)
        self.cur_nimg += batch
        self.batch_idx += 1
