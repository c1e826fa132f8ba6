"""ADA augmentation: parity with StyleGAN2-ADA's AugmentPipe (fixtures made by the official code, see
tests/data/README.md), identity at p = 0, gate probabilities and parameter distributions, gradients to second order,
sharding, and one-line errors."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from clr_gan_jax import sharding
from clr_gan_jax.augment import PIPES, AugmentSpec, augment, geometry, wavelets
from clr_gan_jax.augment.draws import Draws
from clr_gan_jax.augment.pipe import _augment
from clr_gan_jax.errors import UserError

DATA = pathlib.Path(__file__).parent / "data"
PERCENTILES = (10, 50, 90)
KEY = jax.random.key(0)
# Float rounding of a different operation order; the next-largest effect, dropping the zeroing beyond the margin,
# moves the clamped-margin fixture by 2e-5, so 1e-5 (1/800 of a uint8 level) still sees it.
ATOL = 1e-5


def uniform_images(shape, seed: int) -> np.ndarray:
    """Test inputs from numpy: an eager jax.random call would compile a generator per shape."""
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def load(group: str):
    return np.load(DATA / f"augment_{group}.npz", allow_pickle=False)


def to_float(pixels: np.ndarray) -> jax.Array:
    return jnp.asarray(pixels, jnp.float32) / 127.5 - 1


@pytest.mark.parametrize("mode", ["rgb", "gray"])
@pytest.mark.parametrize("group", ["blit", "geom", "color", "filter", "cutout"])
def test_each_group_matches_official_pipe(group, mode):
    data = load(group)
    images = to_float(data[f"{mode}_input"])
    for q in PERCENTILES:
        out = augment(images, 0.0, KEY, group, debug_percentile=q / 100)
        np.testing.assert_allclose(out, data[f"{mode}_q{q}"], rtol=0, atol=ATOL, err_msg=f"{group} {mode} q={q}")


@pytest.mark.parametrize("group", ["blit", "geom"])
def test_geometry_of_wide_images_matches_official_pipe(group):
    data = load(group)
    out = augment(to_float(data["rgb_wide_input"]), 0.0, KEY, group, debug_percentile=0.9)
    np.testing.assert_allclose(out, data["rgb_wide_q90"], rtol=0, atol=ATOL)


def test_geometry_with_clamped_margin_matches_official_pipe():
    data = load("geom")
    strong = AugmentSpec(scale=1, rotate=1, aniso=1, xfrac=1, scale_std=1.0)
    out = augment(to_float(data["rgb_input"]), 0.0, KEY, strong, debug_percentile=0.1)
    np.testing.assert_allclose(out, data["rgb_strong_q10"], rtol=0, atol=ATOL)


def test_resampling_with_a_different_map_per_sample_matches_official_pipe():
    data = load("geom")
    out = jax.jit(geometry.resample)(to_float(data["rgb_input"]), jnp.asarray(data["rgb_mixed_g_inv"]))
    np.testing.assert_allclose(out, data["rgb_mixed"], rtol=0, atol=ATOL)


def test_blit_geom_color_filter_together_match_official_pipe():
    """The order of the groups; test_augment_cli.py checks the grayscale composite through the command line."""
    data = load("bgcf")
    out = augment(to_float(data["rgb_input"]), 0.0, KEY, "bgcf", debug_percentile=0.3)
    np.testing.assert_allclose(out, data["rgb_q30"], rtol=0, atol=ATOL)


def test_wavelet_filters():
    bank = wavelets.band_filters()
    assert bank.shape == (4, 43)
    np.testing.assert_allclose(bank.sum(axis=1), [1, 0, 0, 0], atol=1e-6)  # a low-pass, then three band-passes
    np.testing.assert_allclose(bank.sum(axis=0), np.eye(1, 43, 21)[0], atol=1e-6)  # together: the identity
    np.testing.assert_array_equal(bank, bank[:, ::-1])  # zero phase
    taps = wavelets.geom_filter()
    assert taps.shape == (12,) and abs(taps.sum() - 1) < 1e-6
    assert abs(2 * np.dot(taps, taps) - 1) < 1e-6  # orthogonal: upsampling then downsampling keeps a signal


@pytest.mark.parametrize("mode", ["rgb", "gray"])
def test_noise_sigma_matches_official_pipe(mode):
    data = load("noise")
    images = to_float(data[f"{mode}_input"])
    for q in PERCENTILES:
        residual = np.std(np.asarray(augment(images, 0.0, KEY, "noise", debug_percentile=q / 100)) - images)
        sigma = scipy.special.erfinv(q / 100) * 0.1
        # Each std is estimated from >= 1024 pixels: about 2% standard error.
        np.testing.assert_allclose(residual, sigma, rtol=0.08)
        np.testing.assert_allclose(data[f"{mode}_residual_std_q{q}"], sigma, rtol=0.08)


@pytest.fixture(scope="module")
def full_pipe():
    """Every transform on two 8x8 RGB images; one compilation serves every p and key."""
    images = uniform_images((2, 8, 8, 3), seed=9)

    def aug(x, p=0.9):
        return augment(x, p, KEY, "bgcfnc")

    return images, aug


def test_zero_p_is_the_identity(full_pipe):
    images, aug = full_pipe
    np.testing.assert_array_equal(aug(images, 0.0), images)
    assert np.abs(np.asarray(aug(images, 1.0)) - images).min() > 0
    gray = images[..., :1]
    np.testing.assert_array_equal(augment(gray, 0.0, KEY, "color"), gray)


def test_p_is_traced_and_the_pipe_static():
    images = jnp.zeros((2, 8, 8, 3))
    augment(images, 0.1, KEY, "cutout")
    compiled = _augment._cache_size()
    augment(images, 0.7, jax.random.key(3), "cutout")
    augment(images, jnp.float32(0.3), KEY, "cutout")
    assert _augment._cache_size() == compiled
    augment(images, 0.7, KEY, "noise")
    assert _augment._cache_size() == compiled + 1


def test_transforms_run_with_probability_multiplier_times_p():
    images = uniform_images((512, 4, 4, 3), seed=4)
    out = augment(images, 0.4, jax.random.key(5), AugmentSpec(brightness=0.5, contrast=0.5))
    changed = np.mean(np.any(np.asarray(out) != np.asarray(images), axis=(1, 2, 3)))
    assert abs(changed - (1 - 0.8**2)) < 0.07  # each gate opens with probability 0.5 * p; standard error 0.02


def test_pre_and_post_rotation_together_run_with_probability_p():
    spec = AugmentSpec(rotate=1)
    sample = jax.jit(lambda p: geometry.inverse_transforms(Draws(jax.random.key(15), 4096, None), spec, p, 8, 8))
    for p in (0.3, 0.8):
        rotated = np.mean(np.abs(np.asarray(sample(p))[:, 0, 1]) > 0)
        assert abs(rotated - p) < 0.03  # P(pre or post) = p; standard error < 0.008


def test_parameter_distributions():
    spec = AugmentSpec(xflip=1, xint=1, scale=1)
    sample = jax.jit(lambda key: geometry.inverse_transforms(Draws(key, 4096, None), spec, jnp.float32(1.0), 16, 32))
    g = np.asarray(sample(jax.random.key(6)))
    inverse_scale = np.abs(g[:, 1, 1])
    assert np.allclose(np.abs(g[:, 0, 0]), inverse_scale)  # flips change the sign only
    assert abs(np.mean(g[:, 0, 0] < 0) - 0.5) < 0.05
    assert np.allclose(np.log2(inverse_scale).mean(), 0, atol=0.02)
    assert np.allclose(np.log2(inverse_scale).std(), 0.2, rtol=0.05)
    shift = -g[:, :2, 2]  # the integer translation (sign-flipped in x by the flip), applied before the scale
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-4)
    assert np.abs(shift).max(axis=0).tolist() == [4, 2]  # round(0.125 * 32), round(0.125 * 16)


def test_noise_sigma_is_half_normal_and_gated():
    images = jnp.zeros((1024, 8, 8, 1))
    sigma = np.asarray(augment(images, 0.5, jax.random.key(7), "noise")).std(axis=(1, 2, 3))
    assert abs(np.mean(sigma == 0) - 0.5) < 0.07
    np.testing.assert_allclose(sigma[sigma > 0].mean(), 0.1 * np.sqrt(2 / np.pi), rtol=0.1)


def test_cutout_zeroes_a_square_of_half_the_side():
    images = jnp.ones((64, 16, 16, 1))
    out = np.asarray(augment(images, 1.0, jax.random.key(8), "cutout"))
    zeros = (out == 0).sum(axis=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() < 64  # 8x8 inside the image, less where the centre is near an edge
    assert set(np.unique(out)) <= {0.0, 1.0}


@pytest.fixture(scope="module")
def gradients(full_pipe):
    """First-order gradients of a linear read-out, and R1's: |d D(aug(x)) / dx|^2 differentiated once more."""
    images, aug = full_pipe
    weights = np.random.default_rng(10).standard_normal(images.shape, np.float32)

    def r1(x):
        grad = jax.grad(lambda y: jnp.sum(jnp.tanh(aug(y) * weights)))(x)
        return jnp.sum(grad**2)

    both = jax.jit(lambda x: (jax.grad(lambda y: jnp.sum(aug(y) * weights))(x), jax.grad(r1)(x)))
    return weights, *both(images)


def test_gradient_reaches_the_images_and_is_the_adjoint(full_pipe, gradients):
    images, aug = full_pipe
    weights, grad, _ = gradients
    assert np.isfinite(grad).all() and np.abs(grad).mean() > 0.05
    # The pipe is affine in the images, with parameters independent of them: J v = aug(x + v) - aug(x), and
    # <J v, w> must equal <v, J^T w>.
    direction = np.random.default_rng(12).standard_normal(images.shape, np.float32)
    along = aug(images + direction) - aug(images)
    np.testing.assert_allclose(jnp.sum(along * weights), jnp.sum(direction * grad), rtol=1e-4)


def test_second_order_gradients_through_the_pipe(gradients):
    _, _, second = gradients
    assert np.isfinite(second).all() and np.abs(second).mean() > 1e-3


def test_batch_sharded_over_devices_gives_the_same_result():
    """The margin is a maximum over the global batch, also when the batch is split over devices."""
    mesh = sharding.make_mesh()
    images = uniform_images((jax.device_count(), 8, 8, 3), seed=14)
    expected = augment(images, 1.0, KEY, "blit")
    out = jax.jit(lambda x: augment(x, 1.0, KEY, "blit"))(jax.device_put(images, sharding.batch_sharded(mesh)))
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_named_pipes_are_stylegan2_adas():
    assert PIPES.names() == (
        "blit",
        "geom",
        "color",
        "filter",
        "noise",
        "cutout",
        "bg",
        "bgc",
        "bgcf",
        "bgcfn",
        "bgcfnc",
    )
    bgc = PIPES.get("bgc")
    assert bgc.has_geometry and bgc.has_color and bgc.imgfilter == bgc.noise == bgc.cutout == 0
    every_transform = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast"]
    every_transform += ["lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout"]
    assert PIPES.get("bgcfnc") == AugmentSpec(**dict.fromkeys(every_transform, 1))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: augment(jnp.zeros((2, 8, 8, 3)), 1.0, KEY, "bgcx"), "unknown name 'bgcx'; known: blit, geom"),
        (lambda: augment(jnp.zeros((8, 8, 3)), 1.0, KEY), "NHWC images"),
        (lambda: augment(jnp.zeros((2, 8, 8, 3), jnp.uint8), 1.0, KEY), "x / 127.5 - 1"),
        (lambda: augment(jnp.zeros((2, 8, 8, 4)), 1.0, KEY, "color"), "4 channels"),
        (lambda: augment(jnp.zeros((2, 8, 8, 3)), 1.0, KEY, debug_percentile=1.0), "strictly between 0 and 1"),
        (lambda: AugmentSpec(imgfilter_bands=(1, 1)), "give 4"),
        (lambda: AugmentSpec(scale_std=-1), "scale_std"),
    ],
)
def test_user_mistakes_are_one_line_errors(call, message):
    with pytest.raises(UserError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
