"""Reference (real-data) Inception statistics, computed once per dataset split and cached as .npz.

The file name holds everything the statistics depend on: dataset, split, resolution,
resize mode, weights hash and number of images, so a change of any of them misses the cache.
"""

import os
import re
from collections.abc import Callable

import numpy as np

from clr_gan_jax.metrics import fid


def cache_path(
    cache_dir: str,
    *,
    dataset_name: str,
    split: str,
    resolution: int,
    resize_mode: str,
    weights_sha256: str,
    num_images: int,
) -> str:
    name = f"{dataset_name}-{split}-{resolution}px-{resize_mode}-inception{weights_sha256[:12]}-{num_images}"
    return os.path.join(os.path.expanduser(cache_dir), re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) + ".npz")


def reference_statistics(
    path: str, compute_features: Callable[[], np.ndarray], keep_features: bool = False
) -> dict[str, np.ndarray]:
    """{'mu', 'sigma'} (and 'features' if ``keep_features``) from ``path``, or computed and written there.

    ``compute_features() -> (N, 2048)`` is called only on a cache miss, or when the cached
    file lacks the features that ``keep_features`` asks for (KID and precision/recall need them).
    """
    if os.path.exists(path):
        with np.load(path, allow_pickle=False) as cached:
            if not keep_features or "features" in cached.files:
                return {name: cached[name] for name in cached.files}
    features = np.asarray(compute_features(), np.float32)
    mu, sigma = fid.feature_statistics(features)
    stats = {"mu": mu, "sigma": sigma, **({"features": features} if keep_features else {})}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial.npz"
    np.savez(partial, **stats)
    os.replace(partial, path)  # Readers never see a half-written file.
    return stats
