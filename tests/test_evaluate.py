"""Evaluation wired into training and the CLI: in-loop metrics, the best checkpoint, --mode=evaluate, FID end to end."""

import os

import jax
import numpy as np
import pytest
import scipy.linalg
from helpers import read_json, read_jsonl, restore_state, run_cli
from PIL import Image

from clr_gan_jax import data, evaluate, train
from clr_gan_jax.default_config import base_config
from clr_gan_jax.errors import UserError


def ring8_config():
    c = base_config()
    c.data.name = "ring8"
    c.model.update(arch="mlp", z_dim=8, hidden=32, depth=1, batch_norm=False)
    c.optim.update(g_lr=3e-3, d_lr=3e-3)  # fast enough for the metrics to move within 40 steps
    c.train.update(
        steps=40,
        batch_size=32,
        n_critic=2,
        log_every=10,
        sample_every=40,
        checkpoint_every=10,
        keep_checkpoints=4,
        num_samples=8,
        ema_decay=0.0,
    )
    c.eval.update(metrics="mixture", every=10, num_samples=512, batch_size=256, best_metric="kl_modes")
    return c


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("ring8"))
    config = ring8_config()
    train.train_and_evaluate(config, workdir)
    return config, workdir


def test_in_loop_evaluation_writes_eval_lines(ring8_run, capsys):
    _, workdir = ring8_run
    lines = [line for line in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "eval/modes" in line]
    assert [line["step"] for line in lines] == [10, 20, 30, 40]
    for line in lines:
        assert set(line) == {"step", "eval/modes", "eval/hq_fraction", "eval/kl_modes"}
        assert 0 <= line["eval/modes"] <= 8 and 0 <= line["eval/hq_fraction"] <= 1
    assert any(line["eval/hq_fraction"] > 0 for line in lines)


def test_best_checkpoint_is_the_state_of_the_best_evaluation(ring8_run):
    config, workdir = ring8_run
    lines = [line for line in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if "eval/kl_modes" in line]
    values = [line["eval/kl_modes"] for line in lines]
    best_index = int(np.nanargmin(values))
    best = read_json(os.path.join(workdir, "best", "best.json"))
    assert best == {"metric": "kl_modes", "value": values[best_index], "step": lines[best_index]["step"]}
    assert os.listdir(os.path.join(workdir, "best", "checkpoints")) == [str(best["step"])]

    kept = restore_state(config, workdir, best["step"]).ema
    saved = restore_state(config, os.path.join(workdir, "best"), best["step"]).ema
    for x, y in zip(jax.tree.leaves(kept), jax.tree.leaves(saved)):
        np.testing.assert_array_equal(x, y)


def digits_config():
    c = base_config()
    c.data.resolution = 8
    c.model.update(z_dim=8, g_width=16, d_width=16)
    c.train.update(steps=8, batch_size=16, log_every=4, sample_every=8, checkpoint_every=4)
    c.eval.update(metrics="digits", num_samples=400, batch_size=200)
    return c


DIGITS_FLAGS = [
    "--config=configs/digits_dcgan_clr.py",
    "--config.data.resolution=8",
    "--config.model.z_dim=8",
    "--config.model.g_width=16",
    "--config.model.d_width=16",
    "--config.eval.num_samples=400",
]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """Checkpoints at steps 4 and 8 (trained without in-loop evaluation, which ring8_run covers)."""
    workdir = str(tmp_path_factory.mktemp("digits"))
    config = digits_config()
    config.eval.metrics = ""
    train.train_and_evaluate(config, workdir)
    return workdir


def test_evaluate_mode_writes_a_metric_line_per_checkpoint(digits_run):
    path = os.path.join(digits_run, "metric-digits.jsonl")
    before = len(read_jsonl(path)) if os.path.exists(path) else 0
    result = run_cli(*DIGITS_FLAGS, f"--workdir={digits_run}", "--mode=evaluate", "--checkpoints=all")
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(path)[before:]
    assert [line["snapshot_step"] for line in lines] == [4, 8]
    for line in lines:
        assert line["metric"] == "digits" and line["num_samples"] == 400 and line["total_time"] > 0
        assert set(line["results"]) == {"digits_fd", "digits_classes", "digits_kl"}
        assert line["results"]["digits_fd"] > 0
    assert "[evaluate step 8] digits_fd=" in result.stdout


def test_evaluate_mode_names_missing_checkpoints(digits_run, tmp_path):
    with pytest.raises(
        UserError, match=r"^--checkpoints='4,5': no checkpoint at step\(s\) \[5\]; .* has steps \[4, 8\]$"
    ):
        evaluate.run(digits_config(), digits_run, "4,5")
    with pytest.raises(UserError, match="^no checkpoint in .*: train first"):
        evaluate.run(digits_config(), str(tmp_path))
    config = digits_config()
    config.eval.metrics = ""
    with pytest.raises(UserError, match="^eval.metrics is empty"):
        evaluate.run(config, digits_run)


def test_real_digits_as_png_files_have_a_small_digits_fd(digits_run, tmp_path):
    source = data.create_source(digits_config().data)
    for i in range(400):
        Image.fromarray(source[i]["image"][..., 0]).save(tmp_path / f"{i:04d}.png")
    config = digits_config()
    (real,) = evaluate.run(config, str(tmp_path / "run"), image_path=str(tmp_path))
    (generated,) = evaluate.run(config, digits_run)
    assert real["snapshot_step"] is None and real["snapshot"] == str(tmp_path)
    assert real["results"]["digits_classes"] == 10
    assert real["results"]["digits_fd"] < 0.05 * generated["results"]["digits_fd"]
    assert read_jsonl(tmp_path / "run" / "metric-digits.jsonl") == [real]

    config.eval.num_samples = 401
    with pytest.raises(UserError, match="holds 400 images; the evaluator needs 401"):
        evaluate.run(config, str(tmp_path / "run"), image_path=str(tmp_path))


def _low_rank_sqrtm(matrix):
    """A matrix with the trace and finiteness of sqrtm(matrix), exact when its rank is below 64.

    The covariances of a few samples make sigma1 @ sigma2 a singular 2048x2048 matrix, on
    which scipy's sqrtm takes 40-200 s on 2 cores. The range of such a matrix is found
    from 64 random directions; its nonzero eigenvalues are those of the projected 64x64 matrix.
    """
    basis, _ = np.linalg.qr(matrix @ np.random.default_rng(0).standard_normal((len(matrix), 64)))
    eigenvalues = np.linalg.eigvals(basis.T @ matrix @ basis).astype(complex)
    return np.diag(np.sqrt(eigenvalues))


def test_fid_of_a_tiny_run_with_converted_random_weights(digits_run, random_inception_npz, tmp_path, monkeypatch):
    monkeypatch.setattr(scipy.linalg, "sqrtm", _low_rank_sqrtm)
    config = digits_config()
    config.eval.update(
        metrics="fid,digits",
        num_samples=8,
        num_real=8,
        batch_size=8,
        inception_weights=random_inception_npz,
        cache_dir=str(tmp_path / "cache"),
    )
    fid_line, digits_line = evaluate.run(config, digits_run)
    assert fid_line["metric"] == "fid" and fid_line["snapshot_step"] == 8 and np.isfinite(fid_line["results"]["fid"])
    assert fid_line["results"]["fid"] > 0 and digits_line["metric"] == "digits"
    assert read_jsonl(os.path.join(digits_run, "metric-fid.jsonl")) == [fid_line]
    assert len(os.listdir(tmp_path / "cache")) == 1  # the real statistics, reused by the next evaluation


@pytest.mark.parametrize(
    "update, message",
    [
        (
            {"metrics": "fidd"},
            "eval.metrics: unknown name 'fidd'; known: fid, kid, is, pr, mixture, digits, stacked_digits",
        ),
        ({"metrics": "mixture"}, "eval.metrics: 'mixture' needs data.name in ('ring8', 'grid25'), got 'digits'"),
        (
            {"metrics": "fid", "inception_weights": "absent.npz"},
            "eval.inception_weights='absent.npz' does not exist: download",
        ),
        ({"best_metric": "fid"}, "eval.best_metric='fid' is not a result of eval.metrics='digits'; use one of"),
        ({"every": 0}, "eval.every must be an integer >= 1, got 0"),
        ({"batch_size": 12}, "eval.batch_size=12 is not divisible by the 8 devices"),
    ],
)
def test_bad_eval_config_is_one_line(update, message):
    config = digits_config()
    config.eval.update(update)
    with pytest.raises(UserError) as error:
        evaluate.validate(config, num_devices=8)
    assert message in str(error.value) and "\n" not in str(error.value)
