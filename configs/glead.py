"""GLeaD (+GGDR) on StyleGAN2 with the official scripts' settings, alone or with CLR.

  python -m clr_gan_jax.main --config=configs/glead.py:tiny_clr --workdir=runs/glead_tiny_clr
  python -m clr_gan_jax.main --config=configs/glead.py:ffhq_ggdr --workdir=runs/ffhq256_glead_ggdr \\
      --config.data.path=~/datasets/ffhq256x256.zip --config.glead.lpips_weights=lpips_alex.npz \\
      --config.eval.inception_weights=inception_fid.npz

The argument is ``<dataset>[_ggdr][_clr]`` with dataset ffhq, church, bedroom or tiny. ``<dataset>`` is pure
GLeaD (GLeaD's train scripts with --reg_target_fake=gfwimage: the fake branch is 3 * LPIPS between a fake and
G's decoding of D's heads of it); ``_ggdr`` is the scripts' default, GLeaD + GGDR (--reg_target_fake=gfeat:
10 * the cosine distance between D's feature head of a fake and G's own feature map of it), the paper's Ours*.
Both add the real reconstruction 10 * LPIPS(x, G's decoding of D's heads of x), also in the R1 phase (the
official quirk; ``--config.glead.in_dreg=False`` drops it there). ``_clr`` adds CLR as configs/stylegan2.py's
``_clr`` does (w_clr 5, w_rec 0.5, MSE, phi = D's epilogue features). The LPIPS distances need
``glead.lpips_weights`` (clr_gan_jax/metrics/convert_lpips.py).

The datasets take configs/stylegan2.py's paper256 (batch 64, mbstd 8, fmaps 0.5, lr 0.0025, gamma 1, ema 20
kimg, path length and mixing on, D resnet, clamp 256 in the top 4 resolutions) with no augmentation, D's decoder
to 64 px, and:

  dataset  data                         res_g  kimg   mirror  metric        official FID (GLeaD / GLeaD+GGDR)
  ffhq     FFHQ 256 (tf-extracted)      64     25000  yes     fid50k_full   3.24 / 2.90
  church   LSUN Church (crop 256)       32     50000  no      fid50k_full   2.82 / 2.15
  bedroom  LSUN Bedroom (crop 256)      32     50000  no      fid50k        2.55 / 2.72

(the released checkpoints' FIDs; fid50k compares 50k samples with 50k reals, fid50k_full with all reals).

``tiny[_ggdr][_clr]``: configs/stylegan2.py's tiny preset (32 px stacked digits, batch 8, 6400 steps) with D's
decoder to 16 px and G decoding from its 16 px block, for CPU: the real reconstruction and pure GLeaD's fake
branch are MSE (no LPIPS weights needed), _ggdr's fake branch the cosine feature loss. Measured on 2 CPU cores
(AMD EPYC), one run after another with nothing else running, seed 0; wall time in all (compile and evaluation
included), the median of the progress lines' steps/s (the host's speed drifted by about +-20% within runs), and
the last evaluation:

  config                   wall    steps/s  stacked_fd  modes of 1000  KL to uniform
  stylegan2.py:tiny        7m05s   17.9     7.33        626            0.82
  stylegan2.py:tiny_clr    9m46s   12.2     5.56        745            0.54
  glead.py:tiny            10m40s  11.6     6.55        659            0.70
  glead.py:tiny_clr        12m01s  10.2     5.10        753            0.52
  glead.py:tiny_ggdr       11m25s  11.0     6.07        693            0.63
  glead.py:tiny_ggdr_clr   12m58s  9.5      4.71        766            0.50

Every last grid, its channels viewed apart (the sample pictures show them), is legible digits, blurrier than the
reals; GLeaD adds 1.5-1.6x to plain StyleGAN2's step here, CLR 1.15-1.5x on top.
"""

import importlib.util
import os

DATASETS = {  # name: (res_g, kimg, mirror, num_real for FID: None = all)
    "ffhq": (64, 25000, True, None),
    "church": (32, 50000, False, None),
    "bedroom": (32, 50000, False, 50000),
}
NAMES = (*DATASETS, "tiny")
VARIANTS = tuple(name + suffix for name in NAMES for suffix in ("", "_ggdr", "_clr", "_ggdr_clr"))


def stylegan2_config(variant: str):
    """configs/stylegan2.py's get_config(variant), loaded by path (configs is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stylegan2.py")
    spec = importlib.util.spec_from_file_location("stylegan2_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def get_config(variant: str = "tiny_clr"):
    if variant not in VARIANTS:
        raise ValueError(f"configs/glead.py takes <dataset>[_ggdr][_clr] with dataset in {NAMES}, got {variant!r}")
    clr = variant.endswith("_clr")
    ggdr = variant.removesuffix("_clr").endswith("_ggdr")
    name = variant.removesuffix("_clr").removesuffix("_ggdr")
    tiny = name == "tiny"
    c = stylegan2_config(("tiny" if tiny else "paper256") + ("_clr" if clr else ""))
    c.glead.enabled = True
    c.glead.update(
        fake_target="gfeat" if ggdr else "gfwimage",
        fake_weight=10.0 if ggdr else 3.0,
        fake_distance="cosine" if ggdr else "lpips",
        real_weight=10.0,
        real_distance="lpips",
        in_dreg=True,
    )
    if tiny:
        # pure GLeaD's fake branch compares images: MSE there too, so that no variant needs LPIPS weights
        c.glead.update(res_g=16, decoder_res=16, real_distance="mse", fake_distance="cosine" if ggdr else "mse")
        return c
    res_g, kimg, mirror, num_real = DATASETS[name]
    c.glead.update(res_g=res_g, decoder_res=64)
    c.data.mirror = mirror
    c.train.steps = kimg * 1000 // c.train.batch_size
    c.eval.update(metrics="fid", num_samples=50000, num_real=num_real, best_metric="fid")
    return c
