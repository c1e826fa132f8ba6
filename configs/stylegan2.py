"""StyleGAN2 (+CLR) with the official StyleGAN2-ADA / CLR-GAN cfgs, from a laptop to a pod.

  python -m clr_gan_jax.main --config=configs/stylegan2.py:tiny_clr --workdir=runs/sg2_tiny_clr
  python -m clr_gan_jax.main --config=configs/stylegan2.py:paper256_clr --workdir=runs/ffhq256_clr \\
      --config.data.path=~/datasets/ffhq256x256.zip
  python -m clr_gan_jax.main --config=configs/stylegan2.py:auto_clr,256,8 --workdir=runs/church_clr \\
      --config.data.name=shards --config.data.path=~/datasets/lsunchurch

The argument is ``<cfg>[_ada][_clr][,<resolution>[,<devices>]]`` for cfg in auto, stylegan2, paper256, paper512,
paper1024, cifar (StyleGAN2-ADA's train.py table; CLR-GAN keeps it, except that its paper256 kimg reads
250000, which we take for a typo of the ADA value 25000), and tiny. ``_clr`` adds CLR exactly as the
official CLR-GAN code: w_clr 5, w_rec 0.5, MSE, phi = D's epilogue features (512 wide = z). ``_ada``
adds StyleGAN2-ADA's adaptive augmentation with its defaults (pipe bgc, target 0.6, every 4 steps, 500 kimg),
the paper's StyleGAN2-ADA + CLR with ``_ada_clr``.

  cfg        batch  mbstd  fmaps  lr      gamma  ema kimg  ramp  mapping  kimg
  stylegan2  32     4      1      0.002   10     10        -     8        25000
  paper256   64     8      0.5    0.0025  1      20        -     8        25000
  paper512   64     8      1      0.0025  0.5    20        -     8        25000
  paper1024  32     4      1      0.002   2      10        -     8        25000
  cifar      64     32     1      0.0025  0.01   500       0.05  2        100000  (no path length, no mixing, D orig)

``auto`` derives its numbers from the resolution and the device count as the official train.py does
from the resolution and the GPU count: batch = max(min(devices * min(4096 // res, 32), 64), devices),
mbstd = min(batch // devices, 4), fmaps 1 from 512 px on (else 0.5), lr 0.002 at 1024 px (else
0.0025), gamma = 0.0002 * res^2 / batch, ema = batch * 10 / 32 kimg, ramp-up 0.05, 2 mapping layers.
So at 256 px one device gives batch 16, gamma 0.82, ema 5 kimg, and eight give batch 64, mbstd 4,
gamma 0.2, ema 20 kimg. (Here the minibatch-std groups span the global batch, so ``mbstd`` is its
group size over all devices together.) Every cfg trains in float32 with the official clamp of 256 in
its top 4 resolutions; on GPU/TPU add ``--config.model.compute_dtype=bfloat16`` for the official
mixed precision. Steps are kimg * 1000 / batch; progress is reported in kimg.

Data: ``data.name=images`` reads a dataset-tool zip or folder (FFHQ, AFHQ, LSUN), ``shards`` the
tool's shards, ``cifar`` uses CIFAR-10 from TFDS. Expected: the CLR-GAN paper's FID (fid50k_full)
for paper256_clr on FFHQ-256 3.44 (StyleGAN2 3.86), LSUN Church 3.52 (4.04); paper512_clr on
AFHQ-Cat 4.79 (7.92).

``tiny`` and ``tiny_clr``: a small StyleGAN2 (+CLR) on the embedded stacked digits at 32 px for CPU: channel base
512 (64 channels up to 8 px, 32 at 16, 16 at 32: the digits are 8x8 images resized, so the upper blocks only need to
interpolate), 2 mapping layers, z and w 64 wide so that CLR's phi fits, batch 8, 6400 steps (51.2 kimg), R1 every 16
steps, no path length and no style mixing (as the official cifar cfg), so a run compiles two step variants instead
of four; lr 0.01 (4x the official 0.0025). On 2 CPU cores a step's cost is about proportional to its images, so
small batches buy updates: at 25.6 kimg stacked_fd was 28 at batch 32, 22 at batch 16 and 13 at batch 8. Measured on
2 CPU cores (AMD EPYC, nothing else running): tiny_clr took 9m16s and 9m46s wall in two runs (compilation and
evaluation included; median 12 steps/s, the host's speed drifting by +-20%), tiny 7m05s. tiny_clr ends at stacked_fd
5.6 (real digits 0.09, 2x2-blurred reals 94 at 8 px) and 745 of 1000 stacked modes (tiny: 7.3 and 626); on fc63eea,
on a faster AMD EPYC, tiny_clr took 4m32s and ended at stacked_fd 5.63 and 720 modes. Its RGB grid is coloured
tangles like the real grid; the sample pictures show each channel apart to its right, and there the digits are
legible (0, 2, 3, 5, 6, 9 the clearest), blurrier than the reals.
"""

from clr_gan_jax.default_config import base_config

# cfg: (batch, mbstd, fmaps, lr, gamma, ema kimg, ramp-up, mapping layers, kimg)
CFGS = {
    "stylegan2": (32, 4, 1, 0.002, 10, 10, 0, 8, 25000),
    "paper256": (64, 8, 0.5, 0.0025, 1, 20, 0, 8, 25000),
    "paper512": (64, 8, 1, 0.0025, 0.5, 20, 0, 8, 25000),
    "paper1024": (32, 4, 1, 0.002, 2, 10, 0, 8, 25000),
    "cifar": (64, 32, 1, 0.0025, 0.01, 500, 0.05, 2, 100000),
}
RESOLUTIONS = {"paper256": 256, "paper512": 512, "paper1024": 1024, "cifar": 32}
NAMES = ("auto", *CFGS, "tiny")
VARIANTS = tuple(name + suffix for name in NAMES for suffix in ("", "_clr", "_ada", "_ada_clr"))


def auto_cfg(resolution: int, devices: int) -> tuple:
    """The official train.py's 'auto' numbers for a resolution and a GPU (here: device) count."""
    batch = max(min(devices * min(4096 // resolution, 32), 64), devices)
    return (
        batch,
        min(batch // devices, 4),
        1 if resolution >= 512 else 0.5,
        0.002 if resolution >= 1024 else 0.0025,
        0.0002 * resolution**2 / batch,
        batch * 10 / 32,
        0.05,
        2,
        25000,
    )


def get_config(arg: str = "tiny_clr"):
    variant, *numbers = arg.split(",")
    if variant not in VARIANTS or len(numbers) > 2:
        raise ValueError(f"configs/stylegan2.py takes <cfg>[_ada][_clr][,<resolution>[,<devices>]] with cfg in {NAMES}")
    clr, ada = variant.endswith("_clr"), variant.removesuffix("_clr").endswith("_ada")
    name = variant.removesuffix("_clr").removesuffix("_ada")
    resolution = int(numbers[0]) if numbers else RESOLUTIONS.get(name, 32 if name == "tiny" else 256)
    devices = int(numbers[1]) if len(numbers) > 1 else 1

    c = base_config()
    c.method = "stylegan2"
    c.model.arch = "stylegan2"
    c.clr.update(enabled=clr, phi="features")
    c.augment.pipe = "bgc" if ada else ""  # the official --aug=ada defaults: target 0.6, interval 4, 500 kimg
    c.optim.update(name="adam", b1=0.0, b2=0.99, eps=1e-8)
    c.data.resolution = resolution
    c.eval.update(metrics="", every=1000, num_samples=50000, batch_size=64, inception_weights="inception_fid.npz")
    if name == "tiny":
        c.data.name = "stacked_digits"
        c.model.update(z_dim=64, w_dim=64, mapping_layers=2, channel_base=512, channel_max=64, mbstd_group_size=4)
        c.optim.g_lr = c.optim.d_lr = 0.01
        c.loss.update(r1_gamma=0.1, pl_weight=0.0, style_mixing_prob=0.0)
        c.train.update(batch_size=8, steps=6400, ema_kimg=1.0, ema_rampup=0.05)
        c.train.update(log_every=200, sample_every=1600, checkpoint_every=3200, num_samples=64)
        c.eval.update(metrics="stacked_digits", every=6400, num_samples=2048, batch_size=256, best_metric="")
        return c
    batch, mbstd, fmaps, lr, gamma, ema, ramp, mapping, kimg = (
        auto_cfg(resolution, devices) if name == "auto" else CFGS[name]
    )
    c.data.name = "cifar10" if name == "cifar" else "images"
    c.data.mirror = False
    c.data.num_workers = 4
    c.model.update(
        z_dim=512,
        w_dim=512,
        mapping_layers=mapping,
        channel_base=int(fmaps * 32768),
        channel_max=512,
        mbstd_group_size=mbstd,
        num_fp16_res=4,
        conv_clamp=256.0,
        d_architecture="orig" if name == "cifar" else "resnet",
    )
    c.optim.g_lr = c.optim.d_lr = lr
    c.loss.update(r1_gamma=float(gamma), pl_weight=0.0 if name == "cifar" else 2.0)
    c.loss.style_mixing_prob = 0.0 if name == "cifar" else 0.9
    c.train.update(batch_size=batch, steps=int(kimg * 1000 // batch), ema_kimg=float(ema), ema_rampup=float(ramp))
    c.train.update(log_every=100, sample_every=1000, checkpoint_every=1000, num_samples=64)
    return c
