"""Tooling around a run: the dry run's checks and numbers, --mode=plot, and --mode=generate's interpolation strips."""

import json
import math
import os

import jax
import numpy as np
import pytest
from helpers import digits_config, load_config_file, run_cli
from PIL import Image

from clr_gan_jax import build, checkpoints, data, export, generate, images, plot, run_summary, sharding, train
from clr_gan_jax import workdir as workdir_lib
from clr_gan_jax.errors import CheckpointError, DataError, UserError

DEVICES = 8  # conftest.py forces 8 CPU devices, in this process and in the CLI's subprocesses


def test_dry_run_prints_the_stylegan2_numbers_and_writes_nothing(tmp_path):
    workdir = tmp_path / "runs" / "sg2"
    result = run_cli(
        "--config=configs/stylegan2.py:tiny",
        f"--workdir={workdir}",
        "--dry_run",
        "--config.train.batch_size=16",
        "--config.train.steps=3000",
        "--config.train.ema_kimg=2",
        "--config.loss.pl_weight=2",
        "--config.train.checkpoint_every=1000",
        "--config.train.log_every=100",
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "runs").exists()
    out = result.stdout
    config = load_config_file("configs/stylegan2.py", "tiny")  # lr 0.0025, b1 0, b2 0.99, g every 4, d every 16
    g_ratio, d_ratio = 4 / 5, 16 / 17
    assert f"global batch 16, {16 // DEVICES} per device; 16 real images per step" in out
    assert "Length: 3000 steps, 48 kimg." in out
    assert f"g: adam lr={config.optim.g_lr * g_ratio:.6g} b1=0 b2={0.99**g_ratio:.6g}" in out
    assert f"d: adam lr={config.optim.d_lr * d_ratio:.6g} b1=0 b2={0.99**d_ratio:.6g}" in out
    # ema_kimg=2: half-life 2000 images = 125 steps of 16; decay per step 0.5 ** (16 / 2000).
    assert f"decay {0.5 ** (16 / 2000):.6g} per step, half-life 125 steps (2 kimg)" in out
    assert "at most 0.05 x images seen until 40 kimg" in out
    for phase, every in (("g", 1), ("g_reg", 4), ("d", 1), ("d_reg", 16)):
        assert f"  {phase:<6} trains {phase[0]}  k={every}  r=1" in out
    assert "Checkpoints: every 1000 steps and the last: 1000, 2000, 3000 (3 in all)." in out
    assert "Log: every 100 steps and the last: 100, 200, 300, ..., 2900, 3000 (30 in all)." in out
    assert "Parameters of g:" in out and "mapping_network/fc0/kernel" in out
    assert "batch_size: 16" in out  # the resolved config


@pytest.fixture(scope="module")
def digits_experiment():
    config = digits_config()
    config.train.update(steps=10, n_critic=2, log_every=4, checkpoint_every=5)
    config.eval.update(metrics="digits", every=6)
    return build.build(config, DEVICES)


def test_run_summary_of_the_zoo_method(digits_experiment, tmp_path):
    config = digits_experiment.config
    s = run_summary.summarize(digits_experiment, DEVICES, str(tmp_path / "missing"))
    assert (s.global_batch, s.per_device_batch, s.images_per_step) == (16, 16 // DEVICES, 2 * 16)
    assert s.steps == 10 and s.kimg == pytest.approx(10 * 2 * 16 / 1000)
    assert [(p["name"], p["every"], p["repeats"]) for p in s.phases] == [("d", 1, 2), ("g", 1, 1)]
    o = config.optim
    assert s.optimizers == {
        "g": {"name": "adam", "lr": o.g_lr, "b1": o.b1, "b2": o.b2},
        "d": {"name": "adam", "lr": o.d_lr, "b1": o.b1, "b2": o.b2},
    }
    decay = config.train.ema_decay
    assert s.ema_decay == decay and decay**s.ema_half_life_steps == pytest.approx(0.5)
    assert s.ema_half_life_kimg == pytest.approx(s.ema_half_life_steps * 32 / 1000) and s.ema_rampup == 0
    assert {name: c.steps for name, c in s.cadences.items()} == {
        "log": (4, 8, 10),
        "samples": (8, 10),
        "checkpoints": (5, 10),
        "evaluation": (6, 10),
    }
    params = build.abstract_state(digits_experiment).nets
    assert s.parameters == {
        name: sum(math.prod(x.shape) for x in jax.tree.leaves(n.params)) for name, n in params.items()
    }
    assert s.resume_step is None


def test_dry_run_reports_the_checkpoint_it_resumes_from_and_refuses_another_model(digits_experiment, tmp_path):
    save_initial_checkpoint(digits_config(), str(tmp_path))
    assert run_summary.summarize(digits_experiment, DEVICES, str(tmp_path)).resume_step == 1
    other = digits_experiment.config.copy_and_resolve_references()
    other.model.g_width = 32
    with pytest.raises(CheckpointError, match="of a different model"):
        run_summary.summarize(build.build(other, DEVICES), DEVICES, str(tmp_path))


def test_dry_run_checks_the_lock_and_the_datas_shape(digits_experiment, tmp_path, monkeypatch):
    config, workdir = digits_experiment.config, str(tmp_path)
    with workdir_lib.RunLock(workdir), pytest.raises(UserError, match="another training run"):
        train.check_run(config, workdir)
    monkeypatch.setattr(data, "create_source", lambda _: [{"image": np.zeros((4, 4, 3), np.uint8)}])
    with pytest.raises(DataError, match=r"the source's examples are \(4, 4, 3\), the config expects \(8, 8, 1\)"):
        train.check_run(config, workdir)


def test_dry_run_goes_with_train_only(tmp_path):
    result = run_cli("--config=configs/digits_dcgan_clr.py", f"--workdir={tmp_path}", "--mode=export", "--dry_run")
    assert result.returncode == 2 and "error: --dry_run checks a training run" in result.stderr


def write_metrics(path) -> dict:
    """A synthetic metrics.jsonl: two phases' losses every 10 steps, an evaluation every 20."""
    lines = [
        {"step": s, "d_loss": 1 / s, "g_loss": 2 - 1 / s, "d_grad_norm": 3.0, "steps_per_sec": 5, "images_per_sec": 80}
        for s in range(10, 110, 10)
    ]
    lines += [{"step": s, "eval/digits_fd": 40 / s} for s in range(20, 120, 20)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"step": 120, "d_lo')  # a torn last line
    return lines


def test_plot_draws_one_panel_per_group(tmp_path):
    write_metrics(tmp_path / "metrics.jsonl")
    series = plot.read_series(str(tmp_path / "metrics.jsonl"))
    assert list(series["eval/digits_fd"][0]) == [20, 40, 60, 80, 100]
    panels = plot.group_panels(series)
    assert panels == [
        ("phase losses", ["d_loss", "g_loss"]),
        ("gradient norms", ["d_grad_norm"]),
        ("images per second", ["images_per_sec"]),
        ("digits_fd", ["eval/digits_fd"]),
    ]
    result = run_cli(f"--workdir={tmp_path}", "--mode=plot")  # no --config needed
    assert result.returncode == 0, result.stderr
    picture = np.asarray(Image.open(tmp_path / "curves.png").convert("RGB"))
    assert picture.shape == (2 * plot.PANEL_HEIGHT, 2 * plot.PANEL_WIDTH, 3)
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert set(plot.PALETTE[:2]) <= colours  # d_loss's and g_loss's lines
    # The top-left panel's plot area holds the two lines: many pixels of each colour, not only the legend's swatch.
    area = picture[
        plot.MARGIN_TOP : plot.PANEL_HEIGHT - plot.MARGIN_BOTTOM,
        plot.MARGIN_LEFT : plot.PANEL_WIDTH - plot.MARGIN_RIGHT,
    ]
    for colour in plot.PALETTE[:2]:
        assert (area == colour).all(axis=-1).sum() > 100


def test_plot_of_a_workdir_without_metrics_is_refused(tmp_path):
    with pytest.raises(UserError, match="metrics.jsonl does not exist: --mode=plot reads the metrics.jsonl"):
        plot.plot_run(str(tmp_path))
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(UserError, match="holds no metric lines yet"):
        plot.plot_run(str(tmp_path))
    assert os.listdir(tmp_path) == ["metrics.jsonl"]


def save_initial_checkpoint(config, workdir: str):
    """The untrained state of ``config`` as checkpoint 1 in ``workdir``: enough to generate from."""
    experiment = build.build(config)
    checkpointer = checkpoints.Checkpointer(workdir, None)
    checkpointer.save(1, build.initial_state(experiment, sharding.make_mesh()), config)
    checkpointer.close()


def stylegan2_config():
    config = load_config_file("configs/stylegan2.py", "tiny")
    config.data.resolution = 8
    config.model.update(z_dim=16, w_dim=16, channel_base=128, channel_max=16)
    return config


@pytest.mark.parametrize(
    ("make_config", "trunc"), [(digits_config, 1.0), (stylegan2_config, 0.7)], ids=["dcgan_z", "stylegan2_w"]
)
def test_interpolation_strip_ends_are_the_seeds_images(tmp_path, make_config, trunc):
    config, workdir = make_config(), str(tmp_path / "run")
    save_initial_checkpoint(config, workdir)
    seeds = generate.generate_images(config, workdir, [3, 7], str(tmp_path / "seeds"), trunc=trunc)
    a, b = (np.asarray(Image.open(path)) for path in seeds)
    path = generate.interpolation_strip(config, workdir, 3, 7, 5, str(tmp_path / "strip"), trunc=trunc)
    assert os.path.basename(path) == "interp_seed0003-seed0007.png"
    strip = np.asarray(Image.open(path))
    h, w = a.shape[:2]
    assert strip.shape == (h, 5 * w, *a.shape[2:])
    np.testing.assert_array_equal(strip[:, :w], a)
    np.testing.assert_array_equal(strip[:, -w:], b)
    middle = strip[:, 2 * w : 3 * w].astype(int)
    assert np.abs(middle - a).max() > 0 and np.abs(middle - b).max() > 0
    if config.model.arch == "stylegan2":  # the middle image is G.synthesis of the mean of the two (truncated) ws
        experiment = build.build(config)
        variables, _ = export.restore_ema(experiment, workdir)
        g = experiment.method.networks["g"].module
        z = np.concatenate([np.random.RandomState(seed).randn(1, 16) for seed in (3, 7)]).astype(np.float32)

        @jax.jit
        def middle_image(variables, z):
            ws = g.apply(variables, z, method="mapping", truncation_psi=trunc)
            return g.apply(variables, ws.mean(axis=0, keepdims=True), method="synthesis", noise_mode="const")

        image = middle_image(variables, z)
        assert np.abs(images.to_uint8(image)[0].astype(int) - middle).max() <= 1
