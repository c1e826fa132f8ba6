"""EigenGAN as the zoo builds it (configs/eigengan_ffhq.yaml): a subspace per G layer, hinge loss + R1, EMA 0.999.

  python -m clr_gan_jax.main --config=configs/eigengan.py:digits --workdir=runs/digits_eigengan
  python -m clr_gan_jax.main --config=configs/eigengan.py:digits --workdir=runs/digits_eigengan --mode=traverse --span=3
  python -m clr_gan_jax.main --config=configs/eigengan.py:ffhq_clr --workdir=runs/ffhq_eigengan_clr \\
      --config.data.path=~/datasets/ffhq256x256.zip

Variants: digits, ffhq, each with ``_clr`` for CLR on (CLR's phi restores the whole z: the noise and
every layer's subspace coordinates, all N(0, 1)).
ffhq: the zoo's settings: 256 px, 6 layers of 6 basis vectors, noise 512 (z_dim 512 + 36), G 512
channels at 4x4 halving to 16, D 16 to 512, hinge with R1 (gamma 10), orthogonality weight 1, Adam
lr 1e-4 betas (0.5, 0.999), batch 64, EMA 0.999, 500k steps. Documented, not run here.
digits: 16 px digits on 2 CPU cores: 2 layers of 4 basis vectors, noise 32 (z_dim 40), widths 32,
lr 2e-4, 600 steps, EMA 0.99.

Expected (measured, digits, 600 steps, on 0dc4009): digits_fd 110.1 at step 300 and 96.0 at step 600, 7 of 10
classes (digits_kl 0.47); 1 min of wall time with the traverse picture on a 2-core AMD EPYC (with the test suite
running beside it). The samples are digit-like strokes, not yet clean digits. A run this short depends on the data
order: before 07e1b06 (grain's per-example shuffle) the same config ended at 71.8. The traverse picture
(--mode=traverse --span=3, the zoo's sweep): the 4x4 layer's 4 dimensions (top 4 rows) change nearly nothing yet;
the 8x8 layer's each change the shape strongly and smoothly: from a cross, one grows a blob at the bottom, one draws
a 5, one a 3; the last turns a blocky 3 into the cross. Not run here: digits_clr (trains in tests/test_eigengan.py
on 8x8 shapes) and ffhq (needs a GPU).
"""

from clr_gan_jax.default_config import base_config

VARIANTS = ("digits", "digits_clr", "ffhq", "ffhq_clr")


def get_config(variant: str = "digits"):
    if variant not in VARIANTS:
        raise ValueError(f"configs/eigengan.py takes one of {', '.join(VARIANTS)}; got {variant!r}")
    c = base_config()
    c.model.arch = "eigengan"
    c.clr.enabled = variant.endswith("_clr")
    c.loss.adversarial = "hinge"
    c.loss.r1_gamma = 10.0
    c.model.eigen_ortho = 1.0
    c.optim.b1 = 0.5
    c.train.ema_decay = 0.999
    if variant.startswith("ffhq"):
        c.data.name = "images"
        c.data.resolution = 256
        c.data.num_workers = 4
        c.model.update(eigen_basis=6, z_dim=512 + 6 * 6, g_width=512, d_width=512)
        c.optim.g_lr = c.optim.d_lr = 1e-4
        c.train.update(steps=500_000, batch_size=64, log_every=100, sample_every=1000, checkpoint_every=10000)
        c.train.num_samples = 25
        return c
    c.data.name = "digits"
    c.data.resolution = 16
    c.model.update(eigen_basis=4, z_dim=32 + 2 * 4, g_width=32, d_width=32)
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.train.update(steps=600, batch_size=64, log_every=50, sample_every=300, checkpoint_every=300)
    c.train.ema_decay = 0.99  # 0.999 averages over most of so short a run
    c.eval.metrics = "digits"
    c.eval.every = 300
    c.eval.num_samples = 1000
    c.eval.batch_size = 200
    return c
