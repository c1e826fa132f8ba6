"""The GAN zoo's mode-collapse study, CLR off and on: every unconditional objective on Ring8, Grid25, stacked digits.

  python bench/mode_collapse.py --out=runs/mode_collapse                      # the full study
  python bench/mode_collapse.py --out=runs/mode_collapse --datasets=ring8 --objectives=vanilla,veegan --seeds=0
  python bench/mode_collapse.py --out=/tmp/mc --quick                           # VEEGAN, tiny nets, 20 steps
  python bench/mode_collapse.py --out=runs/mode_collapse --report_only          # table and strips of what is there

Each run is the project's own training (`train.train_and_evaluate`, what ``clr_gan_jax.main`` runs) of a dataset's
settings (`DATASETS`: SimpleMLP, batch 256, 5 D steps per G step on the 2-D sets; a small DCGAN on stacked digits)
with an objective's overrides (`OBJECTIVES`: the zoo's per-objective ring8 settings), with ``clr.enabled`` False and
True, for each seed. Every run has its own workdir <out>/<dataset>/<objective>-<clr|noclr>-s<seed>/; a run whose
``result.json`` exists is not run again, so the study can run in pieces and a rerun only does what is missing.
After the runs it writes, from every result present:

  <out>/table.md                 per dataset and objective, CLR off | on: modes covered, high-quality fraction, KL of
                                 the mode histogram to uniform at the last step (mean +- std over seeds)
  <out>/strip_<dataset>.png      one row per objective and CLR setting (first seed), one column per sample step: the
                                 zoo's strips of scatter plots (2-D) or sample grids (stacked digits)

Cost, measured on an idle 2-core AMD EPYC (one run at a time, compilation, sampling and evaluation included): a
2-D run of the zoo's 5000 steps takes about 4 minutes (Grid25, seed 0: median 227 s, 173 to 381 s; batch 256 x 5 D
steps), a stacked-digits run about 3 (median 176 s, 128 to 236 s; batch 64). The full study (9 objectives x CLR
off/on x 3 seeds on the 2-D sets, 8 on stacked digits: 156 runs) is therefore about 9 hours on such a CPU: run it in
pieces (--datasets, --objectives, --seeds) and write the table of what is there with --report_only. Two runs at once
(two processes, single-threaded XLA) were no faster in all than one.
The README's table is the full study; every run's numbers are in bench/results/mode_collapse.md.
``--quick`` (ring8, VEEGAN, CLR off and on, seed 0, 16-unit nets, 20 steps; the test) is two tiny runs.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clr_gan_jax import train  # noqa: E402
from clr_gan_jax.default_config import COMPARISONS, base_config  # noqa: E402
from clr_gan_jax.errors import TrainingDivergedError  # noqa: E402

ZOO_2D = {  # the zoo's *_ring8.yaml: SimpleMLP 256 wide, z 32, batch 256, 5 D steps per G step, lr 3e-4
    "model.arch": "mlp",
    "model.batch_norm": False,
    "model.z_dim": 32,
    "optim.g_lr": 3e-4,
    "optim.d_lr": 3e-4,
    "train.batch_size": 256,
    "train.n_critic": 5,
    "train.ema_decay": 0.0,
    "eval.metrics": "mixture",
    "eval.num_samples": 2500,
    "eval.batch_size": 512,
}
DATASETS = {
    "ring8": {**ZOO_2D, "data.name": "ring8"},
    "grid25": {**ZOO_2D, "data.name": "grid25"},
    "stacked_digits": {  # 1000 modes: three digits stacked as channels; a small DCGAN (SimpleCNN)
        "data.name": "stacked_digits",
        "data.resolution": 16,
        "model.arch": "dcgan",
        "model.z_dim": 64,
        "model.g_width": 64,
        "model.d_width": 64,
        "train.batch_size": 64,
        "train.ema_decay": 0.0,
        "eval.metrics": "stacked_digits",
        "eval.num_samples": 2000,
    },
}


@dataclasses.dataclass(frozen=True)
class Objective:
    """Config overrides and the datasets the objective runs on (None: all)."""

    overrides: dict
    datasets: tuple[str, ...] | None = None


OBJECTIVES = {
    "vanilla": Objective({"optim.b1": 0.9}),  # gan_ring8.yaml: Adam with torch's default betas
    "r1": Objective({"optim.b1": 0.9, "loss.r1_gamma": 1.0}),  # the zoo's vanilla loss with lambda_r1_reg
    "wgan": Objective({"loss.adversarial": "wgan", "optim.name": "rmsprop", "optim.b2": 0.99, "optim.d_clip": 0.01}),
    "wgan_gp": Objective(
        {"loss.adversarial": "wgan", "loss.gp_weight": 0.1, "loss.gp_interpolation": "per_batch", "optim.b2": 0.9}
    ),
    "sngan": Objective({"model.spectral_norm": True}),
    "lsgan": Objective({"loss.adversarial": "lsgan"}),
    "veegan": Objective(  # veegan_ring8.yaml: BatchNorm MLPs, lambda_rec 1; our VEEGAN is MLP-only (2-D sets)
        {"method": "veegan", "model.batch_norm": True}, datasets=("ring8", "grid25")
    ),
    "realness": Objective(COMPARISONS["realness"]),  # 51 outcomes, the official anchors, G's objective 3
    "adaptivemix": Objective(COMPARISONS["adaptivemix"]),
}
QUICK = {"model.hidden": 16, "model.depth": 1, "model.z_dim": 8, "train.batch_size": 32, "train.n_critic": 2}
QUICK.update({"eval.num_samples": 400, "eval.batch_size": 400})
COLUMNS = (("modes", "modes"), ("hq_fraction", "high-quality fraction"), ("kl_modes", "KL to uniform"))
STACKED = {"modes": "stacked_modes", "kl_modes": "stacked_kl"}  # stacked digits' names for the same columns


def run_config(dataset: str, objective: str, clr: bool, seed: int, steps: int, sample_every: int, quick: bool):
    c = base_config()
    c.update_from_flattened_dict({**DATASETS[dataset], **OBJECTIVES[objective].overrides, **(QUICK if quick else {})})
    c.seed = seed
    c.clr.enabled = clr
    c.train.update(steps=steps, sample_every=sample_every, log_every=sample_every, checkpoint_every=steps)
    c.eval.every = steps
    return c


def run_name(objective: str, clr: bool, seed: int) -> str:
    return f"{objective}-{'clr' if clr else 'noclr'}-s{seed}"


def last_eval(workdir: str) -> dict:
    """The last evaluation's results in the run's metrics.jsonl, without the 'eval/' prefix."""
    results = {}
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if any(key.startswith("eval/") for key in record):
                results = {"step": record["step"]} | {k[5:]: v for k, v in record.items() if k.startswith("eval/")}
    return results


def run_one(config, workdir: str) -> dict:
    """Trains (or resumes) one run and writes its result.json: status, final metrics, wall time."""
    start = time.monotonic()
    try:
        train.train_and_evaluate(config, workdir)
        result = {"status": "ok", **last_eval(workdir)}
    except TrainingDivergedError as e:
        result = {"status": "diverged", "error": str(e)}
    result["wall_s"] = round(time.monotonic() - start, 1)
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def read_result(workdir: str) -> dict | None:
    path = os.path.join(workdir, "result.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def summary(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    return (
        f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"
    )


def cell(results: list[dict], key: str, stacked: bool) -> str:
    key = STACKED.get(key) if stacked else key
    values = [r[key] for r in results if r["status"] == "ok" and key in r] if key else []
    return summary(values, 0 if key in ("modes", "stacked_modes") else 3)


def table(out: str, seeds: list[int]) -> str:
    """The markdown table of every result under ``out``."""
    lines = [
        f"Mode-collapse study: last-step metrics, mean ± std over the seeds present (of {seeds}); n = runs present.",
        "",
        "| dataset | objective | CLR | n | " + " | ".join(title for _, title in COLUMNS) + " | wall s |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in COLUMNS) + " | --- |",
    ]
    for dataset in (name for name in DATASETS if os.path.isdir(os.path.join(out, name))):
        for objective in OBJECTIVES:
            for clr in (False, True):
                results = [read_result(os.path.join(out, dataset, run_name(objective, clr, s))) for s in seeds]
                results = [r for r in results if r is not None]
                if not results:
                    continue
                diverged = sum(r["status"] != "ok" for r in results)
                cells = [cell(results, key, dataset == "stacked_digits") for key, _ in COLUMNS]
                n = f"{len(results)}" + (f" ({diverged} diverged)" if diverged else "")
                wall = np.mean([r["wall_s"] for r in results])
                lines.append(
                    f"| {dataset} | {objective} | {'on' if clr else 'off'} | {n} | {' | '.join(cells)} | {wall:.0f} |"
                )
    return "\n".join(lines) + "\n"


def strip(out: str, dataset: str, seed: int = 0) -> str | None:
    """<out>/strip_<dataset>.png: a row per run of ``seed`` with samples, its sample pictures left to right by step."""
    rows = []
    for objective in OBJECTIVES:
        for clr in (False, True):
            folder = os.path.join(out, dataset, run_name(objective, clr, seed), "samples")
            if os.path.isdir(folder):
                files = sorted(os.listdir(folder))
                rows.append((run_name(objective, clr, seed), [Image.open(os.path.join(folder, f)) for f in files]))
    if not rows:
        return None
    side, label_width = 160, 150
    columns = max(len(pictures) for _, pictures in rows)
    canvas = Image.new("RGB", (label_width + columns * side, len(rows) * side), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, pictures) in enumerate(rows):
        draw.text((4, r * side + side // 2), name, fill="black")
        for c, picture in enumerate(pictures):
            canvas.paste(picture.convert("RGB").resize((side, side)), (label_width + c * side, r * side))
    path = os.path.join(out, f"strip_{dataset}.png")
    canvas.save(path)
    return path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--out", default="runs/mode_collapse", help="output folder: one workdir per run, the table")
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma-separated subset of " + ",".join(DATASETS)
    )
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="comma-separated subset of the objectives")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--steps", type=int, default=5000, help="train steps per run (the zoo's 5000)")
    parser.add_argument("--sample_every", type=int, default=1000, help="steps between the strips' columns")
    parser.add_argument("--quick", action="store_true", help="ring8, veegan, seed 0, tiny nets, 20 steps (the test)")
    parser.add_argument(
        "--report_only", action="store_true", help="write the table and strips of the results present; train nothing"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.objectives, args.seeds, args.steps, args.sample_every = (
            "ring8",
            "veegan",
            "0",
            20,
            10,
        )
    for name, known in (("datasets", DATASETS), ("objectives", OBJECTIVES)):
        unknown = set(getattr(args, name).split(",")) - set(known)
        if unknown:
            parser.error(f"--{name}: unknown {sorted(unknown)}; known: {', '.join(known)}")
    return args


def main(argv=None) -> str:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    for dataset in [] if args.report_only else args.datasets.split(","):
        for objective in args.objectives.split(","):
            if dataset not in (OBJECTIVES[objective].datasets or DATASETS):
                print(f"{objective}: does not run on {dataset}; skipped")
                continue
            for clr in (False, True):
                for seed in seeds:
                    workdir = os.path.join(args.out, dataset, run_name(objective, clr, seed))
                    if read_result(workdir) is not None:
                        continue
                    config = run_config(dataset, objective, clr, seed, args.steps, args.sample_every, args.quick)
                    result = run_one(config, workdir)
                    print(f"{dataset} {run_name(objective, clr, seed)}: {result}", flush=True)
    text = table(args.out, seeds)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    for dataset in args.datasets.split(","):
        strip(args.out, dataset, seeds[0])
    print(text)
    return text


if __name__ == "__main__":
    main()
