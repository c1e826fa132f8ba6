"""The GAN zoo's SimpleCNN / SimpleMLP and the CLR-GAN train step in PyTorch, for `bench/train_step.py`.

Written for the benchmark to do the same work as the JAX train step of the `gan` method
(`clr_gan_jax.methods.gan`) with the vanilla (non-saturating) loss, R1 off:
- D step (x n_critic, each on its own real batch): G(z) without gradient, D(real) and
  D(fake) as two batches (BatchNorm statistics per batch), L_D = (softplus(-D(x)) +
  softplus(D(G(z)))) / 2 + w_clr * MSE(z, phi(G(z))), Adam step on D.
- G step on the first real batch: D frozen (no parameter gradients), L_G =
  softplus(-D(G(z))) + w_rec * MSE(x, G(phi(x))) with phi(x) detached, Adam step on G,
  then the EMA of G's parameters.
Images arrive as uint8 NCHW and are mapped to [-1, 1] inside the step, as in JAX.
With ``compute_dtype=torch.bfloat16`` the forward passes run under CPU autocast
(PyTorch's mixed precision: bfloat16 convolutions and matmuls, float32 parameters).
"""

import contextlib
import copy

import torch
from torch import nn
from torch.nn import functional as F


def _dcgan_init(module: nn.Module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class SimpleCNNGenerator(nn.Module):
    """z (N, z_dim) -> images (N, C, 32, 32)."""

    def __init__(self, z_dim: int = 100, width: int = 1024, channels: int = 3):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, w, 4, 1, 0),
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.ConvTranspose2d(w, w // 2, 4, 2, 1),
            nn.BatchNorm2d(w // 2),
            nn.ReLU(),
            nn.ConvTranspose2d(w // 2, w // 4, 4, 2, 1),
            nn.BatchNorm2d(w // 4),
            nn.ReLU(),
            nn.ConvTranspose2d(w // 4, channels, 4, 2, 1),
            nn.Tanh(),
        )
        self.apply(_dcgan_init)

    def forward(self, z):
        return self.net(z[:, :, None, None])


class SimpleCNNDiscriminator(nn.Module):
    """images (N, C, 32, 32) -> (logits (N,), phi (N, phi_dim)); phi is a k4 conv beside the logit conv."""

    def __init__(self, phi_dim: int = 100, width: int = 1024, channels: int = 3):
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, w // 4, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w // 4, w // 2, 4, 2, 1),
            nn.BatchNorm2d(w // 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w // 2, w, 4, 2, 1),
            nn.BatchNorm2d(w),
            nn.LeakyReLU(0.2),
        )
        self.logit = nn.Conv2d(w, 1, 4, 1, 0)
        self.phi = nn.Conv2d(w, phi_dim, 4, 1, 0)
        self.apply(_dcgan_init)

    def forward(self, x):
        h = self.trunk(x)
        return self.logit(h).flatten(), self.phi(h).flatten(1)


def _mlp_trunk(in_dim: int, hidden: int, depth: int) -> nn.Sequential:
    layers = [nn.Linear(in_dim, hidden)]
    for _ in range(depth):
        layers += [nn.LeakyReLU(0.2), nn.Linear(hidden, hidden)]
    return nn.Sequential(*layers, nn.LeakyReLU(0.2))


class SimpleMLPGenerator(nn.Module):
    def __init__(self, z_dim: int = 32, hidden: int = 256, depth: int = 2, out_dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(_mlp_trunk(z_dim, hidden, depth), nn.Linear(hidden, out_dim), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class SimpleMLPDiscriminator(nn.Module):
    def __init__(self, phi_dim: int = 32, hidden: int = 256, depth: int = 2, in_dim: int = 2):
        super().__init__()
        self.trunk = _mlp_trunk(in_dim, hidden, depth)
        self.logit = nn.Linear(hidden, 1)
        self.phi = nn.Linear(hidden, phi_dim)

    def forward(self, x):
        h = self.trunk(x)
        return self.logit(h).flatten(), self.phi(h)


class CLRTrainStep:
    """n_critic D updates then one G update (and G's EMA), as the `gan` method's step with the vanilla loss."""

    def __init__(
        self,
        generator,
        discriminator,
        z_dim: int,
        n_critic: int,
        lr: float = 8e-4,
        betas=(0.5, 0.999),
        w_clr: float = 5.0,
        w_rec: float = 0.5,
        ema_decay: float = 0.999,
        compute_dtype: torch.dtype = torch.float32,
    ):
        self.g, self.d = generator, discriminator
        self.compute_dtype = compute_dtype
        self.ema = copy.deepcopy(generator).requires_grad_(False)
        self.g_opt = torch.optim.Adam(generator.parameters(), lr, betas)
        self.d_opt = torch.optim.Adam(discriminator.parameters(), lr, betas)
        self.z_dim, self.n_critic = z_dim, n_critic
        self.w_clr, self.w_rec, self.ema_decay = w_clr, w_rec, ema_decay

    @staticmethod
    def to_model_input(batch: torch.Tensor) -> torch.Tensor:
        return batch.float() / 127.5 - 1.0 if batch.dtype == torch.uint8 else batch.float()

    def autocast(self):
        if self.compute_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=self.compute_dtype)

    def d_step(self, real: torch.Tensor):
        """One D update."""
        z = torch.randn(real.shape[0], self.z_dim)
        with self.autocast():
            with torch.no_grad():
                fake = self.g(z)
            real_logits, _ = self.d(real)
            fake_logits, fake_phi = self.d(fake.detach())
        loss = 0.5 * (F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean())
        loss = loss + self.w_clr * F.mse_loss(fake_phi.float(), z)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return loss.detach()

    def g_step(self, real: torch.Tensor):
        self.d.requires_grad_(False)
        with self.autocast():
            fake = self.g(torch.randn(real.shape[0], self.z_dim))
            fake_logits, _ = self.d(fake)
            with torch.no_grad():
                _, real_phi = self.d(real)
            reconstructed = self.g(real_phi)
        loss = F.softplus(-fake_logits.float()).mean() + self.w_rec * F.mse_loss(reconstructed.float(), real)
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        self.d.requires_grad_(True)
        with torch.no_grad():
            ema, params = list(self.ema.parameters()), list(self.g.parameters())
            torch._foreach_lerp_(ema, params, 1.0 - self.ema_decay)
        return loss.detach()

    def __call__(self, reals: torch.Tensor):
        """reals: (n_critic, B, ...) uint8 images or float points. Returns (mean D loss, G loss), unsynced."""
        d_losses = [self.d_step(self.to_model_input(reals[i])) for i in range(self.n_critic)]
        g_loss = self.g_step(self.to_model_input(reals[0]))
        return torch.stack(d_losses).mean(), g_loss
