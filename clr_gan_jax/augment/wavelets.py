"""Wavelet filters of the ADA pipeline and the static 1-D linear operators built from them (numpy, at trace time).

Every operator acts on one image axis and is a dense matrix, applied as a matrix product, which XLA runs near the
machine's peak on CPUs and TPUs. On this project's 2-core CPU, the geometry's upsampling of a 32x32x3 batch of 32
(forward and backward) took 60-85 ms this way, 130-230 ms as sums of shifted slices and 640 ms as depthwise
convolutions (a shared, busy machine). The price is work proportional to the image side per output pixel instead
of to the filter's 6 polyphase taps: at 256 px the dense upsampling does about 40 times the multiply-adds of a
banded one.
"""

import functools

import numpy as np

# Low-pass decomposition filters of the Daubechies symlets sym2 (4 taps) and sym6 (12 taps), the public constants
# of PyWavelets' ``pywt.Wavelet('sym2').dec_lo`` and ``pywt.Wavelet('sym6').dec_lo``.
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)

# Border, in input pixels, that the geometric resampling keeps around the image for its filters (12 taps // 4).
GEOM_PAD = len(SYM6) // 4
BAND_EXPECTED_POWER = np.array([10, 1, 1, 1], np.float32) / 13  # assumed 1/f power of the four bands


def geom_filter() -> np.ndarray:
    """sym6 normalised to unit sum in float32, as StyleGAN2's ``setup_filter`` makes it."""
    taps = np.asarray(SYM6, np.float32)
    return taps / taps.sum()


def band_filters() -> np.ndarray:
    """(4, 43) float32: one zero-phase filter per octave band (lowest first), summing to a unit impulse.

    Built from sym2's power-complementary pair ``lo2(z) = H(z)H(1/z)/2`` and ``hi2(z) = H(-z)H(-1/z)/2``: each
    round dilates the bank by two and low-passes it with ``lo2``, then places ``hi2`` in the next band.
    """
    lo = np.asarray(SYM2)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(4, 1)
    for band in range(1, len(bank)):
        dilated = np.zeros((len(bank), 2 * bank.shape[1] - 1))
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank.astype(np.float32)


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Positions outside [0, size) mirrored about the edge pixels (numpy's and PyTorch's 'reflect' padding)."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded < size, folded, period - folded)


@functools.cache
def reflect_pad_matrix(size: int, pad: int) -> np.ndarray:
    """(size + 2 pad, size) 0/1 matrix: row j picks the input pixel that reflect padding puts at position j."""
    rows = np.arange(size + 2 * pad)
    matrix = np.zeros((rows.size, size), np.float32)
    matrix[rows, reflect_index(rows - pad, size)] = 1
    return matrix


@functools.cache
def upsample_matrix(size: int) -> np.ndarray:
    """(2 size, size): zero insertion after each pixel, then convolution with sym6 at gain 2 (StyleGAN2's upsample2d).

    Output t is ``sum_i 2 f[5 + t - 2i] x[i]``, the borders padded with zeros.
    """
    taps = geom_filter()
    t = np.arange(2 * size)[:, None]
    k = len(taps) // 2 - 1 + t - 2 * np.arange(size)[None, :]
    inside = (k >= 0) & (k < len(taps))
    return np.where(inside, 2 * taps[np.clip(k, 0, len(taps) - 1)], 0).astype(np.float32)


@functools.cache
def downsample_matrix(size: int) -> np.ndarray:
    """(size, 2 (size + 2 GEOM_PAD)): correlation with sym6 (unflipped) and decimation by 2, dropping the border.

    Output w is ``sum_k f[k] y[2w + k + 1]`` (StyleGAN2's downsample2d with padding -2 GEOM_PAD and flip_filter).
    """
    taps = geom_filter()
    k = np.arange(2 * (size + 2 * GEOM_PAD))[None, :] - 2 * np.arange(size)[:, None] - 1
    inside = (k >= 0) & (k < len(taps))
    return np.where(inside, taps[np.clip(k, 0, len(taps) - 1)], 0).astype(np.float32)


@functools.cache
def band_matrices(size: int) -> np.ndarray:
    """(4, size, size): each band filter as a correlation over reflect-padded pixels (pad 21), one per band.

    Images narrower than 22 pixels are reflected repeatedly (numpy's rule); StyleGAN2's padding refuses them.
    """
    bank = band_filters()
    pad = bank.shape[1] // 2
    out = np.arange(size)[:, None]
    source = reflect_index(out + np.arange(bank.shape[1])[None, :] - pad, size)  # (size, taps)
    matrices = np.zeros((len(bank), size, size), np.float32)
    for band, taps in enumerate(bank):
        np.add.at(matrices[band], (np.broadcast_to(out, source.shape), source), taps[None, :])
    return matrices
