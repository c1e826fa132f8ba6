"""Test-session setup: 8 CPU devices (before JAX is imported), so sharding is exercised everywhere; a persistent
compilation cache for the session (it reaches the subprocesses too: runs of the same config compile once); shared
fixtures."""

import os
import tempfile

import numpy as np
import pytest

_flag = "--xla_force_host_platform_device_count=8"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="clr_gan_jax_tests_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


@pytest.fixture(scope="session")
def random_inception_npz(tmp_path_factory):
    """He-normal Inception weights written as a converted file (no torch needed)."""
    from clr_gan_jax import npz
    from clr_gan_jax.metrics import inception, inception_weights

    rng = np.random.default_rng(0)
    flat = {}
    for collection in ("params", "batch_stats"):
        for name, leaf in npz.flatten(inception.variable_shapes()[collection]).items():
            if name.endswith("kernel"):
                value = rng.standard_normal(leaf.shape) * np.sqrt(2.0 / np.prod(leaf.shape[:-1]))
            else:
                value = np.ones(leaf.shape) if name.endswith(("scale", "var")) else np.zeros(leaf.shape)
            flat[name] = value.astype(np.float32)
    path = str(tmp_path_factory.mktemp("weights") / "random_inception.npz")
    inception_weights.save_npz(path, flat, sha256="0" * 64)
    return path
