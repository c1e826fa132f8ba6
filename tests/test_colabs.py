"""The notebooks in colabs/ run end to end (quick settings) and show their pictures."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # starts processes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute(name: str, cwd) -> nbformat.NotebookNode:
    """Runs every cell of colabs/<name> in a fresh kernel; a cell's error fails the test with its traceback."""
    notebook = nbformat.read(os.path.join(REPO, "colabs", name), as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def pictures(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def text(notebook) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLR_GAN_QUICK", "1")
        patch.setenv("CLR_GAN_WORKDIR", str(workdir / "runs"))
        return execute("quickstart.ipynb", workdir), workdir / "runs"


def test_quickstart_trains_both_runs_and_shows_their_samples(quickstart):
    notebook, runs = quickstart
    assert pictures(notebook) == 2  # the two grids side by side, the exported generator's samples
    assert "digits_fd" in text(notebook)
    assert os.path.exists(runs / "clr" / "export" / "generator.npz")
    assert sorted(os.listdir(runs)) == ["clr", "gan"]


def test_generator_notebook_matches_the_package_and_shows_its_pictures(quickstart, tmp_path, monkeypatch):
    _, runs = quickstart
    monkeypatch.setenv("CLR_GAN_NPZ", str(runs / "clr" / "export" / "generator.npz"))
    notebook = execute("generator_from_npz.ipynb", tmp_path)
    assert pictures(notebook) == 3  # samples, interpolation, truncation
    assert "largest pixel difference from clr_gan_jax:" in text(notebook)
