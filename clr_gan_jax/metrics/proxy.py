"""Offline proxy metrics for the embedded datasets: no Inception weights needed.

* 2-D Gaussian mixtures (Ring8, Grid25), as VEEGAN / PacGAN: a sample is high quality
  if within 3 std of its nearest centre; a mode is covered if it has at least
  ``min_count`` high-quality samples; KL of the modes' histogram to uniform.
* Digits: a small MLP classifier trained on scikit-learn's digits (shipped in
  ``assets/digits_classifier.npz``, trained by ``train_digits_classifier``) gives a
  Frechet distance on its penultimate features and the coverage of the 10 classes.
* Stacked digits: each channel classified -> one of 1000 modes; modes covered, KL.

KL divergences are in nats, of the observed histogram to the uniform one (0 is perfect).
"""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.model_selection import train_test_split

from clr_gan_jax import npz
from clr_gan_jax.data import embedded
from clr_gan_jax.metrics import fid

DIGITS_CLASSIFIER_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "digits_classifier.npz")
DIGITS_SIDE = 8
NUM_DIGITS = 10
# Accuracy of the shipped classifier on the held-out split, at each of 8/16/32/64 px
# (the lowest of the four; see train_digits_classifier).
DIGITS_TEST_ACCURACY = 0.987


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL(p || uniform) of a histogram, in nats; NaN for an empty histogram."""
    counts = np.asarray(counts, np.float64)
    if counts.sum() == 0:
        return float("nan")
    p = counts[counts > 0] / counts.sum()
    return float((p * np.log(p * len(counts))).sum())


def mode_coverage(mode_ids: np.ndarray, num_modes: int, min_count: int) -> tuple[int, float]:
    """(number of modes hit at least ``min_count`` times, KL of the mode histogram to uniform)."""
    counts = np.bincount(np.asarray(mode_ids, np.int64), minlength=num_modes)
    return int((counts >= min_count).sum()), kl_to_uniform(counts)


def mixture_metrics(points: np.ndarray, centres: np.ndarray, std: float, min_count: int = 20) -> dict[str, float]:
    """Modes covered, fraction of high-quality samples and KL to uniform of (N, 2) samples.

    ``min_count`` = 20 is PacGAN's threshold for 2,500 samples.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != np.shape(centres)[1]:
        raise ValueError(f"Mixture samples must be (N, {np.shape(centres)[1]}) points, got {points.shape}.")
    distances = np.linalg.norm(points[:, None, :] - np.asarray(centres, np.float64)[None], axis=-1)
    nearest = distances.argmin(axis=1)
    high_quality = distances.min(axis=1) <= 3.0 * std
    modes, kl = mode_coverage(nearest[high_quality], len(centres), min_count)
    return {"modes": float(modes), "hq_fraction": float(high_quality.mean()), "kl_modes": kl}


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's fixed train / test indices into scikit-learn's digits (stratified, 30% test)."""
    labels = embedded.load_digits_images(DIGITS_SIDE)[1]
    return train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed, stratify=labels)


def to_digit_input(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] or float [-1, 1] (N, R, R) images of any R -> float (N, 8, 8) in [0, 1]."""
    if images.dtype == jnp.uint8:
        images = images.astype(jnp.float32) / 255.0
    else:
        images = (images.astype(jnp.float32) + 1.0) / 2.0
    if images.shape[1:] == (DIGITS_SIDE, DIGITS_SIDE):
        return images
    return jax.image.resize(images, (len(images), DIGITS_SIDE, DIGITS_SIDE), "linear", antialias=True)


class DigitsClassifier(nn.Module):
    """MLP on digits: (N, 8, 8) in [0, 1] (see to_digit_input) -> (penultimate features, logits)."""

    hidden: tuple[int, ...] = (128, 64)

    @nn.compact
    def __call__(self, digits):
        x = digits.reshape(len(digits), -1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return x, nn.Dense(NUM_DIGITS)(x)


def load_digits_classifier(path: str = DIGITS_CLASSIFIER_PATH) -> dict:
    """The shipped classifier's variables ({'params': ...})."""
    fix = "rebuild it with `python -m clr_gan_jax.metrics.train_digits_classifier`"
    flat = npz.read(path, "Digits classifier", fix)
    return {"params": npz.unflatten(flat)}


def _single_channel(images):
    if images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(f"Digits metrics expect (N, R, R, 1) images, got shape {images.shape}.")
    return images[..., 0]


def digits_outputs(variables, images):
    """(N, R, R, 1) images -> {'features': penultimate (N, 64), 'probs': (N, 10)} (jit-able)."""
    features, logits = DigitsClassifier().apply(variables, to_digit_input(_single_channel(images)))
    return {"features": features, "probs": jax.nn.softmax(logits)}


def stacked_digits_outputs(variables, images):
    """(N, R, R, 3) images -> {'features': (N, 3, 64), 'probs': (N, 3, 10)}, each channel read as a digit (jit-able)."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"Stacked digits metrics expect (N, R, R, 3) images, got shape {images.shape}.")
    channels = jnp.moveaxis(images, -1, 1).reshape(-1, *images.shape[1:3])
    features, logits = DigitsClassifier().apply(variables, to_digit_input(channels))
    return {
        "features": features.reshape(len(images), 3, -1),
        "probs": jax.nn.softmax(logits).reshape(len(images), 3, NUM_DIGITS),
    }


def digits_metrics(
    features: np.ndarray,
    probs: np.ndarray,
    real_statistics: tuple[np.ndarray, np.ndarray],
    confidence: float = 0.9,
    min_count: int = 10,
) -> dict[str, float]:
    """Frechet distance to the real digits' features; classes with at least ``min_count``
    predictions of probability >= ``confidence``; KL of the predicted-class histogram to uniform."""
    predicted = probs.argmax(axis=1)
    confident = probs.max(axis=1) >= confidence
    classes, _ = mode_coverage(predicted[confident], NUM_DIGITS, min_count)
    _, kl = mode_coverage(predicted, NUM_DIGITS, 1)
    return {
        "digits_fd": fid.frechet_distance(*fid.feature_statistics(features), *real_statistics),
        "digits_classes": float(classes),
        "digits_kl": kl,
    }


def stacked_digits_metrics(
    features: np.ndarray, probs: np.ndarray, real_statistics: tuple[np.ndarray, np.ndarray], min_count: int = 1
) -> dict[str, float]:
    """Modes (of 1000) hit at least ``min_count`` times, KL of the mode histogram to uniform, and the Frechet
    distance of the channels' features to the real channels' (``stacked_fd``: whether each channel looks like
    a digit at all, which mode counts cannot tell: a classifier names a digit for any blob)."""
    digits = probs.argmax(axis=-1)
    modes, kl = mode_coverage(100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2], NUM_DIGITS**3, min_count)
    channel_features = features.reshape(-1, features.shape[-1])
    fd = fid.frechet_distance(*fid.feature_statistics(channel_features), *real_statistics)
    return {"stacked_modes": float(modes), "stacked_kl": kl, "stacked_fd": fd}
