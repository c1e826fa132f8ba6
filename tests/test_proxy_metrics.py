"""Offline proxy metrics: real data scores near-perfect, a collapsed sample scores one mode."""

import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from clr_gan_jax.data import embedded
from clr_gan_jax.metrics import evaluator as evaluator_lib
from clr_gan_jax.metrics import fid, proxy


def _from_array(samples):
    return lambda index, size: samples[index * size : (index + 1) * size]


def _evaluate(metric, source, samples, tmp_path, batch_size=300):
    evaluate = evaluator_lib.create_evaluator(
        [metric],
        dataset_name="proxy",
        source=source,
        resolution=np.shape(samples)[1],
        num_samples=len(samples),
        batch_size=batch_size,
        cache_dir=str(tmp_path),
    )
    return evaluate(_from_array(samples))


@pytest.mark.parametrize("make_source, num_modes", [(embedded.ring8, 8), (embedded.grid25, 25)])
def test_real_mixture_samples_cover_every_mode(make_source, num_modes, tmp_path):
    source = make_source()
    points = np.stack([source[i]["image"] for i in range(len(source))])
    results = _evaluate("mixture", source, points, tmp_path, batch_size=1000)
    assert results["modes"] == num_modes
    assert results["hq_fraction"] > 0.98
    assert results["kl_modes"] < 0.01


def test_collapsed_mixture_samples_cover_one_mode():
    points = np.repeat(embedded.RING8_CENTRES[3:4], 500, axis=0)
    results = proxy.mixture_metrics(points, embedded.RING8_CENTRES, embedded.ZOO_STD)
    assert results["modes"] == 1 and results["hq_fraction"] == 1.0
    assert results["kl_modes"] == pytest.approx(np.log(8))


def test_mixture_samples_far_from_every_centre_are_not_high_quality():
    points = np.full((100, 2), 0.0, np.float32)  # the ring's centre, 10 std from every mode
    results = proxy.mixture_metrics(points, embedded.RING8_CENTRES, embedded.ZOO_STD)
    assert results["modes"] == 0 and results["hq_fraction"] == 0.0


@pytest.fixture(scope="module")
def classifier():
    variables = proxy.load_digits_classifier()
    return variables, jax.jit(proxy.digits_outputs)


@pytest.mark.parametrize("resolution", [8, 32])
def test_digits_classifier_accuracy_on_its_test_split(classifier, resolution):
    variables, outputs = classifier
    images, labels = embedded.load_digits_images(resolution)
    _, test = proxy.digits_split()
    predicted = np.asarray(outputs(variables, images[test][..., None])["probs"]).argmax(1)
    assert (predicted == labels[test]).mean() >= proxy.DIGITS_TEST_ACCURACY - 0.02


def test_digits_frechet_distance_separates_real_from_noise(classifier):
    variables, outputs = classifier
    images = embedded.load_digits_images(16)[0][..., None]
    order = np.random.default_rng(0).permutation(len(images))
    first, second = images[order[: len(images) // 2]], images[order[len(images) // 2 :]]
    noise = np.random.default_rng(1).integers(0, 256, first.shape, dtype=np.uint8)
    features = lambda x: np.asarray(outputs(variables, x)["features"])
    real_stats = fid.feature_statistics(features(first))
    real_fd = fid.frechet_distance(*fid.feature_statistics(features(second)), *real_stats)
    noise_fd = fid.frechet_distance(*fid.feature_statistics(features(noise)), *real_stats)
    assert noise_fd > 20 * real_fd


def test_digits_metrics_of_real_and_collapsed_samples(tmp_path):
    source = embedded.DigitsSource(16)
    real = np.stack([source[i]["image"] for i in range(len(source))])[:1500]
    results = _evaluate("digits", source, real, tmp_path)
    assert results["digits_classes"] == 10 and results["digits_kl"] < 0.01 and results["digits_fd"] < 1.0
    collapsed = _evaluate("digits", source, np.repeat(real[:1], 600, axis=0), tmp_path)
    assert collapsed["digits_classes"] <= 1 and collapsed["digits_kl"] == pytest.approx(np.log(10))
    assert collapsed["digits_fd"] > 10 * results["digits_fd"]


def test_stacked_digits_metrics_of_real_and_collapsed_samples(tmp_path):
    source = embedded.StackedDigitsSource(8, size=5000)
    real = np.stack([source[i]["image"] for i in range(len(source))])
    results = _evaluate("stacked_digits", source, real, tmp_path, batch_size=1000)
    assert results["stacked_modes"] > 950  # 5000 draws of 1000 modes leave ~7 empty
    assert results["stacked_kl"] < 0.25  # the KL of a 5-per-mode multinomial sample is ~0.1
    assert results["stacked_fd"] < 1.0
    collapsed = _evaluate("stacked_digits", source, np.repeat(real[:1], 1000, axis=0), tmp_path, batch_size=1000)
    assert collapsed["stacked_modes"] == 1 and collapsed["stacked_kl"] == pytest.approx(np.log(1000))
    blurred = real.astype(np.float32).reshape(-1, 4, 2, 4, 2, 3).mean(axis=(2, 4)).repeat(2, 1).repeat(2, 2)
    blobs = _evaluate("stacked_digits", source, blurred.round().astype(np.uint8), tmp_path, batch_size=1000)
    assert blobs["stacked_fd"] > 5 * results["stacked_fd"]


@pytest.mark.parametrize("as_zip", [False, True])
def test_exported_image_files_score_like_the_arrays(tmp_path, as_zip):
    source = embedded.DigitsSource(16)
    images = np.stack([source[i]["image"] for i in range(200)])
    folder = tmp_path / "samples"
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(folder / f"{index:04d}.png")
    path = shutil.make_archive(str(tmp_path / "samples"), "zip", folder) if as_zip else str(folder)
    evaluate = evaluator_lib.create_evaluator(
        ["digits"],
        dataset_name="proxy",
        source=source,
        resolution=16,
        num_samples=200,
        batch_size=100,
        cache_dir=str(tmp_path),
    )
    from_files = evaluator_lib.evaluate_image_files(path, evaluate)
    assert from_files == pytest.approx(evaluate(_from_array(images)), rel=1e-6)
