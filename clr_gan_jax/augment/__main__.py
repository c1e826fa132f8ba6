r"""Shows what an ADA pipe does: every image of a folder, augmented, written as PNG under the same name.

  python -m clr_gan_jax.augment --images=~/data/cats --outdir=/tmp/cats_bgc --pipe=bgc --p=0.6
  python -m clr_gan_jax.augment --images=DIR --outdir=OUT --pipe=bgcfnc --debug_percentile=0.8

With --debug_percentile=q every transform of the pipe runs with StyleGAN2-ADA's deterministic parameters for q
(``AugmentPipe(x, debug_percentile=q)``), so the outputs can be compared with the official code.
"""

import sys

from absl import app, flags, logging

from clr_gan_jax.augment.folder import augment_folder
from clr_gan_jax.augment.spec import PIPES
from clr_gan_jax.errors import UserError


def _define_flags():
    """Defined only when run as a program, so importing the package adds no global flags."""
    flags.DEFINE_string("images", None, "Folder or zip of PNG, JPEG or WebP images of one square size.", required=True)
    flags.DEFINE_string("outdir", None, "Folder to write the augmented images to (created if missing).", required=True)
    flags.DEFINE_string("pipe", "bgc", f"Augmentation pipe: {', '.join(PIPES.names())}.")
    flags.DEFINE_float("p", 1.0, "Augmentation probability (each transform runs with probability p).")
    flags.DEFINE_float("debug_percentile", None, "In (0, 1): StyleGAN2-ADA's deterministic parameters; p ignored.")
    flags.DEFINE_integer("seed", 0, "Random seed of the augmentation parameters.")
    flags.DEFINE_integer("batch_size", None, "Images per augmentation call; default: by image size, at most 64.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    try:
        written = augment_folder(
            f.images, f.outdir, f.pipe, f.p, debug_percentile=f.debug_percentile, seed=f.seed, batch_size=f.batch_size
        )
    except UserError as e:
        sys.exit(f"augment: {e}")
    logging.info("Wrote %d images to %s.", len(written), f.outdir)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
