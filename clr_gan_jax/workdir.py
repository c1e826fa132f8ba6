"""The run directory (``--workdir``): checks made before anything is written to it."""

import os

from clr_gan_jax.errors import require


def validate(workdir: str):
    """The workdir must be creatable and writable; nothing is written if it is not."""
    require(bool(workdir), "--workdir is required")
    path = os.path.abspath(workdir)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    require(os.path.isdir(existing), f"--workdir {workdir}: {existing} is not a directory")
    require(os.access(existing, os.W_OK | os.X_OK), f"--workdir {workdir} is not writable ({existing}): choose another")
