"""The default main job: a DCGAN + CLR on scikit-learn's bundled digits, 2 CPU cores, no download.

  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=runs/digits

Expected: finishes in under 5 minutes on 2 CPU cores; the last grid in
<workdir>/samples/ shows recognisable digits of all ten classes. The digits proxy metrics
(``[eval ...]`` lines, 'eval/*' in metrics.jsonl) are computed at steps 1000 and 2000 and the
state with the lowest digits_fd is kept in <workdir>/best/.
``--config.clr.enabled=False`` trains the same DCGAN without the CLR terms.

The zoo's conditional GANs on the same digits (10 classes) are variants of this job:
cgan, cgan_cbn, acgan, projection (see configs/cifar10_zoo.py), each with ``_clr`` for CLR on:

  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py:acgan_clr --workdir=runs/digits_acgan_clr
  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py:acgan_clr --workdir=runs/digits_acgan_clr \\
      --mode=generate --class_idx=7 --seeds=0-7

The CLR paper's comparison objectives, unconditional, each with ``_clr`` for CLR on: realness (RealnessGAN,
objective 3; realness_obj1, realness_obj2), adaptivemix (DCGAN + AdaptiveMix), with the settings of
configs/cifar10_zoo.py's variants of the same names except the digits job's optimisation (Adam 2e-4 (0.5, 0.999),
batch 64, 2000 steps):

  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py:realness --workdir=runs/digits_realness
  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py:adaptivemix --workdir=runs/digits_adaptivemix

Measured on 2 CPU cores shared with other jobs (load ~20), so the wall times are upper bounds: realness reached
digits_fd 5.039 at step 1000 and 4.276 at step 2000 (digits_classes 10, digits_kl 0.040) in 32 minutes (2.1 steps/s
while the cores were free, ~16 minutes); its grid shows blurry but varied digits, most of them recognisable.
adaptivemix reached digits_fd 6.726 at step 1000 and 4.717 at step 2000 (digits_classes 10, digits_kl 0.035) in 30
minutes (up to 3 steps/s while the cores were free); its grid shows varied digit shapes, blurrier and more often
malformed than realness's.

The conditional variants' sample grids have one row per class (digit 0 at the top), and their evaluation adds
``intra_digits``: the Frechet distance on the digits classifier's features within each class
(``intra_digits_fd_<k>``, 100 samples of each class against its ~180 real digits) and its mean
over the classes (``intra_digits_fd``), the digits counterpart of the intra-FID.
"""

from clr_gan_jax.default_config import COMPARISONS, CONDITIONAL, base_config

VARIANTS = ("",) + tuple(name + suffix for name in (*CONDITIONAL, *COMPARISONS) for suffix in ("", "_clr"))


def get_config(variant: str = ""):
    if variant not in VARIANTS:
        raise ValueError(
            f"configs/digits_dcgan_clr.py takes nothing or one of {', '.join(VARIANTS[1:])}; got {variant!r}"
        )
    c = base_config()
    c.data.name = "digits"
    c.data.resolution = 16
    c.model.arch = "dcgan"
    c.model.z_dim = 64
    c.model.g_width = 128
    c.model.d_width = 128
    c.train.steps = 2000
    c.train.batch_size = 64
    c.train.ema_decay = 0.99
    c.train.log_every = 100
    c.train.sample_every = 500
    c.train.checkpoint_every = 1000
    c.eval.metrics = "digits"  # digits_fd, digits_classes, digits_kl from the shipped classifier: no weights needed
    c.eval.every = 1000
    c.eval.num_samples = 1000
    c.eval.batch_size = 200
    c.eval.best_metric = "digits_fd"
    if variant.removesuffix("_clr") in COMPARISONS:
        c.clr.enabled = variant.endswith("_clr")
        c.update_from_flattened_dict(COMPARISONS[variant.removesuffix("_clr")])
    elif variant:
        c.model.num_classes = 10
        c.clr.enabled = variant.endswith("_clr")
        c.train.num_samples = 80  # the grid: one row of 8 per class
        c.eval.metrics = "digits,intra_digits"
        c.update_from_flattened_dict(CONDITIONAL[variant.removesuffix("_clr")])
    return c
