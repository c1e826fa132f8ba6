"""Where training reports go: metrics.jsonl, TensorBoard event files and a console progress line."""

import json
import os
import sys
import time

import numpy as np


class MetricWriter:
    """Appends {'step', **scalars} lines to <workdir>/metrics.jsonl and mirrors them to TensorBoard.

    A resumed run (``resume_step``) first drops the lines of steps after the checkpoint it resumes
    from, which the run will log again, so metrics.jsonl never repeats a step.
    """

    def __init__(self, workdir: str, resume_step: int = 0):
        from tensorboardX import SummaryWriter

        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "metrics.jsonl")
        if resume_step and os.path.exists(path):
            _drop_lines_after(path, resume_step)
        self._jsonl = open(path, "a")  # noqa: SIM115 -- open for the whole run
        self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write_scalars(self, step: int, scalars: dict):
        scalars = {k: float(v) for k, v in scalars.items()}
        self._jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self._jsonl.flush()
        for name, value in scalars.items():
            self._tensorboard.add_scalar(name, value, step)

    def write_image(self, step: int, name: str, image: np.ndarray):
        self._tensorboard.add_image(name, image, step, dataformats="HWC")

    def close(self):
        self._jsonl.close()
        self._tensorboard.close()


def _drop_lines_after(path: str, step: int):
    """Rewrites ``path`` without its lines of steps > ``step`` (and without a torn last line), atomically."""
    kept = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line if line.endswith("\n") else line + "\n")
            except (ValueError, KeyError, TypeError):
                continue
    with open(path + ".partial", "w") as f:
        f.writelines(kept)
    os.replace(path + ".partial", path)


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """One console line per logging interval: step and kimg, losses (and ADA's p and the sign of D on augmented
    reals), throughput (and s/kimg), elapsed time, ETA."""

    def __init__(self, total_steps: int, images_per_step: int, stream=sys.stdout):
        self._total, self._images_per_step = total_steps, images_per_step
        self._t0 = time.monotonic()
        self._stream = stream

    def print(self, step: int, scalars: dict):
        elapsed = time.monotonic() - self._t0
        rate = scalars.get("steps_per_sec", 0.0)  # measured over the last interval, compilation excluded
        eta = (self._total - step) / rate if rate > 0 else float("nan")
        shown = ("d_loss", "g_loss", "d_clr", "g_rec") + (("ada_p", "d_real_sign") if "ada_p" in scalars else ())
        losses = " ".join(f"{k}={scalars[k]:.4g}" for k in shown if k in scalars)
        images_per_sec = scalars.get("images_per_sec", 0)
        sec_per_kimg = f" {1000 / images_per_sec:.1f} s/kimg" if images_per_sec > 0 else ""
        speed = f"{scalars.get('steps_per_sec', 0):.2f} steps/s {images_per_sec:.0f} img/s{sec_per_kimg}"
        eta_text = format_duration(eta) if np.isfinite(eta) else "?"
        kimg = step * self._images_per_step / 1000
        print(
            f"[{step}/{self._total} {100 * step / self._total:5.1f}% kimg {kimg:.1f}] {losses} | {speed} | "
            f"elapsed {format_duration(elapsed)} ETA {eta_text}",
            file=self._stream,
            flush=True,
        )
