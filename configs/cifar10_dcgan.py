"""DCGAN (the GAN zoo's SimpleCNN) on CIFAR-10 with the zoo's hyperparameters, with or without CLR.

  python -m clr_gan_jax.main --config=configs/cifar10_dcgan.py:clr --workdir=runs/cifar10_dcgan_clr
  python -m clr_gan_jax.main --config=configs/cifar10_dcgan.py:baseline --workdir=runs/cifar10_dcgan

Needs CIFAR-10 prepared once as TFDS array_record (see the README: ``pip install -e .[tfds]``
then ``tfds build cifar10 --file_format=array_record``); ``--config.data.path`` points at a
non-default TFDS data_dir. Zoo setup: batch 512, 5 D steps per G step, 40k G steps, Adam
8e-4 with betas (0.5, 0.999), x-flips, no EMA. Expected: the zoo reports FID 24.73 / IS 7.03
for the baseline (50k samples vs the train split); the CLR paper reports a 31% lower FID for
CLR in its own DCGAN setup. This is a GPU/TPU job: on 2 CPU cores one step takes seconds.

FID and IS (50k samples every 2000 steps, best checkpoint by FID) need the FID Inception
converted to ./inception_fid.npz (see the README), so they are off by default; turn them on with

  --config.eval.metrics=fid,is --config.eval.best_metric=fid

or evaluate the kept checkpoints afterwards with the same overrides and --mode=evaluate --checkpoints=all.
"""

from clr_gan_jax.default_config import base_config


def get_config(variant: str = "clr"):
    if variant not in ("clr", "baseline"):
        raise ValueError(f"configs/cifar10_dcgan.py takes 'clr' or 'baseline', got {variant!r}")
    c = base_config()
    c.data.name = "cifar10"
    c.data.resolution = 32
    c.data.mirror = True
    c.data.num_workers = 4
    c.model.arch = "dcgan"
    c.model.z_dim = 100
    c.model.g_width = c.model.d_width = 1024
    c.clr.enabled = variant == "clr"
    c.optim.g_lr = c.optim.d_lr = 8e-4
    c.train.steps = 40000
    c.train.batch_size = 512
    c.train.n_critic = 5
    c.train.ema_decay = 0.0
    c.train.log_every = 100
    c.train.sample_every = 2000
    c.train.checkpoint_every = 2000
    c.eval.metrics = ""  # FID/IS need the converted Inception weights: see the module docstring
    c.eval.every = 2000
    c.eval.num_samples = 50000
    c.eval.batch_size = 512
    c.eval.inception_weights = "inception_fid.npz"
    return c
