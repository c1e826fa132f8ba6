"""FID, KID, IS and precision/recall against closed forms; the reference cache; the Inception evaluator."""

import numpy as np
import pytest
import scipy.linalg

from clr_gan_jax import sharding
from clr_gan_jax.errors import UserError
from clr_gan_jax.metrics import evaluator as evaluator_lib
from clr_gan_jax.metrics import (
    fid,
    inception,
    inception_score,
    kid,
    precision_recall,
    reference_cache,
)


def _random_covariance(rng, dim):
    a = rng.standard_normal((dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def _analytic_frechet(mu1, s1, mu2, s2):
    """Tr sqrt(s1 s2) = Tr sqrt(s1^1/2 s2 s1^1/2), a symmetric PSD root computed by eigh."""
    root1 = scipy.linalg.sqrtm(s1).real
    eigenvalues = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eigenvalues, 0, None)).sum()


def test_fid_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).standard_normal((500, 16))
    stats = fid.feature_statistics(features)
    assert abs(fid.frechet_distance(*stats, *stats)) < 1e-8


def test_fid_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)  # 5 + 1 + 1 + 4
    assert fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)
    assert expected == pytest.approx(11.0)


def test_fid_matches_closed_form_for_general_gaussians_and_their_samples():
    rng = np.random.default_rng(1)
    dim = 8
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    s1, s2 = _random_covariance(rng, dim), _random_covariance(rng, dim)
    expected = _analytic_frechet(mu1, s1, mu2, s2)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    x = rng.multivariate_normal(mu1, s1, 200_000)
    y = rng.multivariate_normal(mu2, s2, 200_000)
    sampled = fid.frechet_distance(*fid.feature_statistics(x), *fid.feature_statistics(y))
    assert sampled == pytest.approx(expected, rel=0.02)


def test_fid_of_rank_deficient_covariances_is_finite():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((10, 32)), rng.standard_normal((10, 32)) + 1.0  # N < D: singular covariances
    value = fid.frechet_distance(*fid.feature_statistics(x), *fid.feature_statistics(y))
    assert np.isfinite(value) and value > 0


def test_kid_is_zero_in_expectation_for_equal_distributions_and_positive_when_shifted():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16))
    mean, std = kid.kernel_inception_distance(x, y, num_subsets=20, subset_size=500)
    assert abs(mean) < 3 * std / np.sqrt(20) + 1e-3
    shifted, _ = kid.kernel_inception_distance(x, y + 1.0, num_subsets=20, subset_size=500)
    assert shifted > 0.1 and shifted > 50 * abs(mean)


def test_kid_is_unbiased_on_a_tiny_example():
    """With one-dimensional features the kernel is (xy + 1)^3; compare with a direct double sum."""
    x, y = np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [-1.0], [0.5]])
    k = lambda a, b: (a * b + 1.0) ** 3
    m = 3
    xx = sum(k(x[i, 0], x[j, 0]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i, 0], y[j, 0]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i, 0], y[j, 0]) for i in range(m) for j in range(m)) / (m * m)
    assert kid.polynomial_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_inception_score_of_uniform_logits_is_one():
    mean, std = inception_score.inception_score(np.zeros((100, inception.NUM_LOGITS)))
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_confident_evenly_spread_logits_is_the_number_of_classes():
    classes = 10
    logits = 30.0 * np.eye(inception.NUM_LOGITS)[np.arange(1000) % classes]
    mean, _ = inception_score.inception_score(logits)
    assert mean == pytest.approx(classes, rel=1e-4)


def _clusters(rng, centres, per_cluster):
    return np.concatenate([c + 0.1 * rng.standard_normal((per_cluster, len(c))) for c in centres])


def test_precision_recall_of_identical_sets_is_one():
    features = np.random.default_rng(4).standard_normal((300, 8)).astype(np.float32)
    assert precision_recall.precision_recall(features, features, block=128) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero():
    rng = np.random.default_rng(5)
    real = _clusters(rng, [np.zeros(8)], 300)
    fake = _clusters(rng, [np.full(8, 100.0)], 300)
    assert precision_recall.precision_recall(real, fake) == (0.0, 0.0)


def test_precision_recall_of_half_the_modes_is_full_precision_half_recall():
    """In 2-D the k=3 manifold of 200 points covers nearly all of a fresh sample of its cluster."""
    rng = np.random.default_rng(6)
    centres = [np.array([100.0, 0.0]), np.array([0.0, 100.0]), np.array([-100.0, 0.0]), np.array([0.0, -100.0])]
    real = _clusters(rng, centres, 200)
    fake = _clusters(rng, centres[:2], 400)
    precision, recall = precision_recall.precision_recall(real, fake)
    assert precision > 0.95 and recall == pytest.approx(0.5, abs=0.03)


def test_reference_statistics_are_cached(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.random.default_rng(7).standard_normal((50, 4))

    path = reference_cache.cache_path(
        str(tmp_path),
        dataset_name="toy",
        split="train",
        resolution=8,
        resize_mode="tf1",
        weights_sha256="ab" * 32,
        num_images=50,
    )
    first = reference_cache.reference_statistics(path, compute)
    second = reference_cache.reference_statistics(path, compute)
    assert len(calls) == 1 and set(first) == {"mu", "sigma"}
    np.testing.assert_array_equal(first["sigma"], second["sigma"])
    with_features = reference_cache.reference_statistics(path, compute, keep_features=True)  # features were not kept
    assert len(calls) == 2 and with_features["features"].shape == (50, 4)
    reference_cache.reference_statistics(path, compute, keep_features=True)
    assert len(calls) == 2


class _ImageSource:
    """A random-access source that counts its reads."""

    def __init__(self, images):
        self.images, self.reads = images, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.reads += 1
        return {"image": self.images[index], "label": np.int32(0)}


def test_inception_evaluator_end_to_end_with_cache(random_inception_npz, tmp_path):
    """Computes the real statistics once, then reads them from the cache. (One FID only:
    scipy's sqrtm of a singular 2048x2048 matrix takes ~40 s on 2 cores.)"""
    real = np.random.default_rng(8).integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
    mesh = sharding.make_mesh()
    devices = mesh.shape[sharding.DATA_AXIS]
    batch_size = devices * max(1, 4 // devices)  # Small: CPU "devices" share the same cores.
    same = lambda index, size: real[index * size : (index + 1) * size]
    flat = lambda index, size: np.full((size, 16, 16, 3), 255 * (index % 2), np.uint8)

    def make(metrics, source):
        return evaluator_lib.create_evaluator(
            metrics,
            dataset_name="toy",
            source=source,
            resolution=16,
            num_samples=12,
            batch_size=batch_size,
            cache_dir=str(tmp_path),
            inception_weights=random_inception_npz,
            mesh=mesh,
        )

    source = _ImageSource(real)
    results = make(["fid", "kid", "is", "pr"], source)(same)
    assert set(results) == {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall"}
    assert np.isfinite(list(results.values())).all() and results["fid"] > 0 and results["is_mean"] >= 1.0
    assert source.reads > len(real)  # the real statistics were computed

    cached_source = _ImageSource(real)
    evaluate = make(["kid", "pr"], cached_source)
    again, off = evaluate(same), evaluate(flat)
    assert cached_source.reads <= 1  # only the peek at one image's shape: statistics came from the cache
    assert again["kid_mean"] == pytest.approx(results["kid_mean"], rel=1e-5)
    assert off["kid_mean"] > again["kid_mean"] and off["precision"] < again["precision"]


def test_inception_metrics_without_weights_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="pt_inception-2015-12-05-6726825d.pth"):
        evaluator_lib.create_evaluator(
            ["fid"],
            dataset_name="toy",
            source=_ImageSource(np.zeros((4, 8, 8, 3), np.uint8)),
            resolution=8,
            num_samples=4,
            batch_size=4,
            cache_dir=str(tmp_path),
        )


def test_unknown_metric_is_refused(tmp_path):
    with pytest.raises(UserError, match="^eval.metrics: unknown name 'fidd'; known: fid, kid, is, pr"):
        evaluator_lib.create_evaluator(
            ["fidd"],
            dataset_name="toy",
            source=_ImageSource(np.zeros((4, 8, 8, 3), np.uint8)),
            resolution=8,
            num_samples=4,
            batch_size=4,
            cache_dir=str(tmp_path),
        )
