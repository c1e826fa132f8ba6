"""bench/stylegan2_step.py: its phase schedule, its repository check, and a --quick run's table."""

import os
import re
import subprocess
import sys

import pytest
from helpers import REPO, load_config_file

from clr_gan_jax import build
from clr_gan_jax.errors import UserError

sys.path.insert(0, os.path.join(REPO, "bench"))
import stylegan2_reference  # noqa: E402
import stylegan2_step  # noqa: E402


@pytest.mark.parametrize("pl_weight, combinations, warmup", [(2.0, 3, 5), (0.0, 2, 2)])
def test_a_cycle_runs_every_phase_in_its_proportion_and_the_warmup_sees_every_combination(
    pl_weight, combinations, warmup
):
    config = load_config_file("configs/stylegan2.py", "tiny_clr")
    config.loss.pl_weight = pl_weight  # with the path length, G's regulariser adds a third combination
    experiment = build.build(config)
    steps, first = stylegan2_step.schedule(experiment, 16)
    counts = {name: sum(name in active for active in steps) for name in ("g", "g_reg", "d", "d_reg")}
    with_pl = experiment.config.loss.pl_weight > 0
    assert counts == {"g": 16, "g_reg": 4 if with_pl else 0, "d": 16, "d_reg": 1}
    assert len(set(steps)) == combinations and first == warmup
    assert set(steps[:first]) == set(steps)


def test_the_reference_repository_must_hold_the_official_training_package(tmp_path):
    with pytest.raises(UserError, match="no training/loss.py"):
        stylegan2_reference.import_official(str(tmp_path), clr=True)


@pytest.mark.slow
def test_quick_run_prints_a_table_row_with_positive_timings():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, os.path.join("bench", "stylegan2_step.py"), "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    row = next(line for line in lines if line.split()[:2] == ["tiny_clr,8", "jax"])
    numbers = [float(x) for x in re.findall(r"\d+\.\d+|\d+", row.split("jax", 1)[1])]
    batch, compile_seconds, median, low, high, images_per_second, seconds_per_kimg = numbers
    assert batch == 8 and compile_seconds > 0 and 0 < low <= median <= high
    # the table rounds s/step to 4 decimals, images/s to 2 and s/kimg to 1: allow both roundings, plus slack
    step_rounding = 0.00005
    assert images_per_second == pytest.approx(8 / median, abs=0.0051 + 8 * step_rounding / median**2)
    assert seconds_per_kimg == pytest.approx(median * 1000 / 8, abs=0.051 + step_rounding * 1000 / 8)
    assert re.fullmatch(r"tiny_clr,8 batch 8: jax \d+\.\d s/kimg on \S+", lines[-1])
