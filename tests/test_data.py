"""Embedded datasets and the grain pipeline: contents, determinism, resumption, per-process sharding."""

import numpy as np
import pytest

from clr_gan_jax import export, images
from clr_gan_jax.data import create_source, embedded, is_stacked, make_dataset, make_iterator
from clr_gan_jax.default_config import base_config
from clr_gan_jax.errors import UserError


def _zoo_ring8_centres():
    t = np.linspace(0, 1.75, 8) * np.pi
    return np.stack([np.cos(t), np.sin(t)], 1) * 10


def _zoo_grid25_centres():
    line = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    return np.stack([np.repeat(line, 5), np.tile(line, 5)], 1)


@pytest.mark.parametrize(
    "source, centres", [(embedded.ring8(), _zoo_ring8_centres()), (embedded.grid25(), _zoo_grid25_centres())]
)
def test_mixtures_are_the_zoos(source, centres):
    """The zoo's datasets/toy.py: std 0.5 around its centres, 400 samples a mode, scaled by 1/15."""
    points = np.stack([source[i]["image"] for i in range(len(source))])
    labels = np.array([source[i]["label"] for i in range(len(source))])
    num_modes = len(centres)
    assert len(source) == 400 * num_modes and np.bincount(labels).tolist() == [400] * num_modes
    np.testing.assert_allclose(source.centres, centres / 15, atol=1e-6)
    assert source.std == pytest.approx(0.5 / 15)
    for k in range(num_modes):
        mode = points[labels == k]
        np.testing.assert_allclose(mode.mean(0), source.centres[k], atol=4 * 0.5 / 15 / np.sqrt(400))
        assert (mode - mode.mean(0)).std() == pytest.approx(0.5 / 15, rel=0.1)
    assert np.abs(points).max() <= 1.0


def test_digits_and_stacked_digits():
    digits = embedded.DigitsSource(16)
    assert len(digits) == 1797 and digits[0]["image"].shape == (16, 16, 1) and digits[0]["image"].dtype == np.uint8
    assert sorted({int(digits[i]["label"]) for i in range(100)}) == list(range(10))
    stacked = embedded.StackedDigitsSource(16, size=500, seed=1)
    item = stacked[7]
    assert item["image"].shape == (16, 16, 3)
    np.testing.assert_array_equal(item["image"], stacked[7]["image"])  # a fixed set for a seed
    images, labels = embedded.load_digits_images(16)
    for channel, digit in zip(range(3), f"{int(item['label']):03d}"):
        matches = [
            i for i in np.flatnonzero(labels == int(digit)) if np.array_equal(images[i], item["image"][..., channel])
        ]
        assert matches, f"channel {channel} is not a digit {digit}"
    assert len({int(stacked[i]["label"]) for i in range(500)}) > 300


def test_stacked_digits_pictures_show_each_channel_apart():
    config = base_config().data
    config.name = "stacked_digits"
    assert is_stacked(config)
    config.name = "digits"
    assert not is_stacked(config)
    stacked = embedded.StackedDigitsSource(8, size=6, seed=0)
    grid = images.image_grid(np.stack([stacked[i]["image"] for i in range(6)]), columns=3)
    picture = images.with_channels_apart(grid, gap=2)
    h, w, _ = grid.shape
    assert picture.shape == (h, 4 * w + 3 * 2, 3)
    np.testing.assert_array_equal(picture[:, :w], grid)
    for channel in range(3):
        panel = picture[:, (w + 2) * (channel + 1) : (w + 2) * (channel + 1) + w]
        for c in range(3):
            np.testing.assert_array_equal(panel[..., c], grid[..., channel])
        assert (picture[:, (w + 2) * channel + w : (w + 2) * (channel + 1)] == 128).all()


def take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_pipeline_is_deterministic_and_resumes_exactly():
    source = embedded.DigitsSource(8)
    dataset = make_dataset(source, batch_size=10, seed=3, mirror=True)
    first = take(make_iterator(dataset), 400)  # > 2 epochs of 1797
    again = take(make_iterator(dataset), 400)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(first[0]["label"], first[180]["label"])  # epochs are reshuffled

    resumed = make_iterator(make_dataset(source, batch_size=10, seed=3, mirror=True, start=250))
    for a, b in zip(first[250:255], take(resumed, 5)):  # a run resumed at step 250 starts at batch 250
        np.testing.assert_array_equal(a["image"], b["image"])


def test_every_example_seen_once_per_epoch_across_two_processes():
    source = embedded.ring8()
    seen = []
    for process in range(2):
        dataset = make_dataset(source, batch_size=1, seed=5, process_index=process, process_count=2)
        seen += [tuple(b["image"][0]) for b in take(make_iterator(dataset), len(source) // 2)]
    every = {tuple(source[i]["image"]) for i in range(len(source))}
    assert len(seen) == len(set(seen)) == len(every) and set(seen) == every


def test_mirror_flips_some_images_left_right():
    source = embedded.DigitsSource(8)
    plain = next(make_iterator(make_dataset(source, batch_size=64, seed=0)))
    mirrored = next(make_iterator(make_dataset(source, batch_size=64, seed=0, mirror=True)))
    flipped = [
        np.array_equal(m, p[:, ::-1]) and not np.array_equal(m, p) for m, p in zip(mirrored["image"], plain["image"])
    ]
    kept = [np.array_equal(m, p) for m, p in zip(mirrored["image"], plain["image"])]
    assert all(f or k for f, k in zip(flipped, kept)) and 16 < sum(flipped) < 48


class PerExampleReads:
    """The same examples without ``read_batch``: the pipeline reads them one by one."""

    def __init__(self, source):
        self._source = source

    def __len__(self):
        return len(self._source)

    def __getitem__(self, index):
        return self._source[index]


@pytest.mark.parametrize("source, mirror", [(embedded.ring8(), False), (embedded.DigitsSource(8), True)])
def test_batched_reads_match_per_example_reads_across_an_epoch_boundary(source, mirror):
    start = len(source) // 7 - 1  # batch start + 1 holds the end of epoch 0 and the start of epoch 1
    batches = [
        take(make_iterator(make_dataset(s, batch_size=7, seed=2, mirror=mirror, start=start)), 3)
        for s in (source, PerExampleReads(source))
    ]
    for fast, slow in zip(*batches):
        np.testing.assert_array_equal(fast["image"], slow["image"])
        np.testing.assert_array_equal(fast["label"], slow["label"])
        assert fast["image"].shape == (7, *np.shape(source[0]["image"]))


def test_mirror_of_points_is_refused():
    config = base_config()
    config.data.name, config.data.mirror = "ring8", True
    with pytest.raises(UserError, match="data.mirror flips images"):
        create_source(config.data)


def test_scatter_plots_draw_reals_of_every_mode():
    source = embedded.ring8()  # ordered by mode: its first 2000 points hold 5 of the 8
    real = export.scatter_reals(source)
    nearest = np.argmin(np.linalg.norm(real[:, None] - embedded.RING8_CENTRES[None], axis=-1), axis=1)
    assert real.shape == (2000, 2) and np.bincount(nearest, minlength=8).min() >= 200
