"""Helpers shared by several test files."""

import pathlib

import numpy as np

DATA = pathlib.Path(__file__).parent / "data"


def load_fixture(name: str) -> dict[str, np.ndarray]:
    """All arrays of ``tests/data/<name>`` (no pickles)."""
    with np.load(DATA / name, allow_pickle=False) as data:
        return dict(data)


def nhwc(x: np.ndarray) -> np.ndarray:
    """PyTorch NCHW activations -> NHWC."""
    return np.transpose(x, (0, 2, 3, 1))


def hwio(w: np.ndarray) -> np.ndarray:
    """PyTorch OIHW convolution weights -> HWIO."""
    return np.transpose(w, (2, 3, 1, 0))


def assert_close(actual, expected, tol: float = 2e-5) -> None:
    """Equal up to float32 rounding: |actual - expected| <= tol * max(1, max |expected|)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * max(1.0, float(np.abs(expected).max())))


def state_dict(fixture: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The PyTorch state dict stored in a fixture under ``<prefix>/sd/<key>``."""
    head = f"{prefix}/sd/"
    return {k[len(head) :]: v for k, v in fixture.items() if k.startswith(head)}
