"""The GAN zoo's CIFAR-10 objectives on its SimpleCNN (DCGAN), each with or without CLR.

  python -m clr_gan_jax.main --config=configs/cifar10_zoo.py:dcgan --workdir=runs/cifar10_dcgan
  python -m clr_gan_jax.main --config=configs/cifar10_zoo.py:wgan_gp_clr --workdir=runs/cifar10_wgan_gp_clr

Variants: dcgan, dcgan_r1, wgan, wgan_gp, sngan, sngan_hinge, lsgan, the CLR paper's comparison objectives
realness (objective 3; realness_obj1, realness_obj2) and adaptivemix, and the class-conditional
cgan, cgan_cbn, acgan, projection; append ``_clr`` for the
same run with CLR-GAN's two terms (official weights: w_clr 5, w_rec 0.5, MSE; phi a linear head).
Hyperparameters are the zoo's (xyfJASON/GANs-Implementations, configs/*_cifar10.yaml):
batch 512, 5 D updates per G update, 40k G updates, x-flips, no EMA, SimpleCNN with width 1024,
z of 100, and
  dcgan        vanilla (non-saturating) loss, Adam 8e-4 (0.5, 0.999)
  dcgan_r1     + R1 on reals, gamma 10 (the zoo's lambda_r1_reg)
  wgan         Wasserstein loss, RMSprop 2e-4, every D parameter clipped to [-0.01, 0.01] after each D update
  wgan_gp      Wasserstein loss + gradient penalty 10, Adam 8e-4 (0.5, 0.9); one interpolation weight per
               batch, as the zoo draws it (--config.loss.gp_interpolation=per_sample for the paper's)
  sngan        spectral norm on every D convolution (BatchNorm kept), vanilla loss, Adam 8e-4 (0.5, 0.999)
  sngan_hinge  the same with the hinge loss
  lsgan        least squares (a=0, b=1, c=1), Adam 8e-4 (0.5, 0.999)
  cgan         10 classes, one-hot label appended to z in G and as maps to D's input; vanilla loss, Adam 8e-4
  cgan_cbn     the same with conditional BatchNorm in G (per-class scale and shift) instead of G's concat
  acgan        conditional BatchNorm in G, an unconditional D with a class head (aux_classifier, weight 1; its
               cross-entropy on the reals only in D's loss, on the fakes in G's, as the zoo)
  projection   conditional BatchNorm in G, a projection D (not in the zoo: Miyato & Koyama 2018 on SimpleCNN)
  realness     RealnessGAN (objectives/realness.py) with its official code's settings (kam1107/RealnessGAN,
               scripts/run_CelebA.sh; it has no CIFAR-10 script): 51 outcomes, skews +-1, the code's normal/uniform
               anchors, G's objective 3 (realness_obj1, realness_obj2: objectives 1 and 2), spectral norm on every
               D layer as its DCGAN D, Adam 2e-4 (0.5, 0.999), batch 32, one D update per G update; the zoo's
               40k steps, x-flips, no EMA, SimpleCNN
  adaptivemix  dcgan + AdaptiveMix (objectives/adaptivemix.py) with the official weights: 1 in D's and G's
               losses, lam ~ U(0, 1), feature noise 0.05 (the official code is StyleGAN2 only)

Needs CIFAR-10 prepared once as TFDS array_record (README: ``pip install -e .[tfds]`` then
``tfds build cifar10 --file_format=array_record``); ``--config.data.path`` points at a
non-default TFDS data_dir. Expected (the zoo's table, FID / IS of 50k samples vs the train
split): dcgan 24.73 / 7.03, dcgan_r1 24.15 / 7.02, wgan 49.92 / 5.69, wgan_gp 28.80 / 6.72,
sngan 24.92 / 6.88, sngan_hinge 28.52 / 6.74, lsgan 28.49 / 6.75; and FID / intra-FID (mean over
the classes of 5k samples each vs the class's train images) / IS: cgan 25.50 / 47.73 / 7.56,
cgan_cbn 25.35 / 47.41 / 7.75, acgan 19.92 / 49.99 / 7.99. The CLR paper reports a 31%
lower FID for CLR in its own DCGAN setup, and in its table (from the methods' papers, their own setups)
CIFAR-10 FIDs of 36.73 / 34.59 / 36.21 for RealnessGAN's objectives 1 / 2 / 3 and 30.85 for AdaptiveMix.
These are GPU/TPU jobs: on 2 CPU cores a step takes seconds.

FID and IS (50k samples every 2000 steps, best checkpoint by FID) need the FID Inception
converted to ./inception_fid.npz (see the README), so they are off by default; turn them on with

  --config.eval.metrics=fid,is --config.eval.best_metric=fid      (conditional: fid,is,intra_fid)
"""

from clr_gan_jax.default_config import COMPARISONS, CONDITIONAL, base_config

REALNESS_OPTIM = {"optim.g_lr": 2e-4, "optim.d_lr": 2e-4, "train.batch_size": 32, "train.n_critic": 1}
OBJECTIVES = {
    "dcgan": {},
    "dcgan_r1": {"loss.r1_gamma": 10.0},
    "wgan": {
        "loss.adversarial": "wgan",
        "optim.name": "rmsprop",
        "optim.g_lr": 2e-4,
        "optim.d_lr": 2e-4,
        "optim.b2": 0.99,
        "optim.d_clip": 0.01,
    },
    "wgan_gp": {
        "loss.adversarial": "wgan",
        "loss.gp_weight": 10.0,
        "loss.gp_interpolation": "per_batch",
        "optim.b2": 0.9,
    },
    "sngan": {"model.spectral_norm": True},
    "sngan_hinge": {"model.spectral_norm": True, "loss.adversarial": "hinge"},
    "lsgan": {"loss.adversarial": "lsgan"},
    **{name: fields | (REALNESS_OPTIM if name.startswith("realness") else {}) for name, fields in COMPARISONS.items()},
    **{name: {"model.num_classes": 10, **fields} for name, fields in CONDITIONAL.items()},
}
VARIANTS = tuple(name + suffix for name in OBJECTIVES for suffix in ("", "_clr"))


def get_config(variant: str = "dcgan_clr"):
    if variant not in VARIANTS:
        raise ValueError(f"configs/cifar10_zoo.py takes one of {', '.join(VARIANTS)}; got {variant!r}")
    objective, clr = variant.removesuffix("_clr"), variant.endswith("_clr")
    c = base_config()
    c.data.name = "cifar10"
    c.data.resolution = 32
    c.data.mirror = True
    c.data.num_workers = 4
    c.model.arch = "dcgan"
    c.model.z_dim = 100
    c.model.g_width = c.model.d_width = 1024
    c.clr.enabled = clr
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
    c.update_from_flattened_dict(OBJECTIVES[objective])
    return c
