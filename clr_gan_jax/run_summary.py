"""What a training run will do, worked out from its config without training: the ``--dry_run`` report and the
parameter tables logged when a run starts.

    summary = run_summary.summarize(experiment, num_devices, workdir)   # numbers, as a dataclass
    print(run_summary.format_summary(summary, experiment.config))      # the dry run's report

Kimg counts the real images the loop reads (``Experiment.images_per_step`` per step), as the
progress line does; the EMA's half-life is given in those units too.
"""

import dataclasses
import math

import jax
import ml_collections
from clu import parameter_overview

from clr_gan_jax import build, checkpoints, evaluate

# What the loop does at some steps, and the train field holding its interval.
CADENCES = {"log": "log_every", "samples": "sample_every", "checkpoints": "checkpoint_every"}


@dataclasses.dataclass(frozen=True)
class Cadence:
    """Something the loop does every ``every`` steps and at the last one."""

    every: int
    steps: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class RunSummary:
    method: str
    example_shape: tuple[int, ...]
    phases: tuple[dict, ...]  # name, network, every, repeats
    devices: int
    processes: int
    global_batch: int
    per_device_batch: int
    images_per_step: int
    steps: int
    kimg: float
    optimizers: dict[str, dict]  # per network: name, lr, b1, b2 as applied
    ema_decay: float  # per step
    ema_half_life_steps: float
    ema_half_life_kimg: float
    ema_rampup: float  # > 0: the half-life is at most ema_rampup * images seen, until ema_rampup_end_kimg
    ema_rampup_end_kimg: float | None
    cadences: dict[str, Cadence]  # log, samples, evaluation (if any metric), checkpoints
    parameters: dict[str, int]  # per network
    resume_step: int | None  # the workdir's newest checkpoint (checked to hold this config's model)


def cadence(every: int, total: int) -> Cadence:
    return Cadence(every=every, steps=tuple(sorted({*range(every, total + 1, every), total})))


def half_life_steps(decay: float) -> float:
    """Steps after which a moving average of weight ``decay`` on the past keeps half of a value."""
    return math.log(0.5) / math.log(decay) if decay > 0 else 0.0


def abstract_params(experiment: build.Experiment) -> dict[str, dict]:
    """Each network's parameters as shapes and dtypes, nothing allocated."""
    return {name: net.params for name, net in build.abstract_state(experiment).nets.items()}


def parameter_tables(experiment: build.Experiment) -> dict[str, str]:
    """Each network's parameter table (name, shape, dtype, size, total), as clu prints it."""
    return {
        name: parameter_overview.get_parameter_overview(params, include_stats=False)
        for name, params in abstract_params(experiment).items()
    }


def summarize(experiment: build.Experiment, num_devices: int, workdir: str) -> RunSummary:
    """The numbers of `RunSummary` for ``experiment`` on ``num_devices`` devices; reads (never writes) ``workdir``."""
    config, method = experiment.config, experiment.method
    t = config.train
    optimization = method.describe(config)
    half_life = half_life_steps(optimization.ema_decay)
    half_life_kimg = half_life * experiment.images_per_step / 1000
    cadences = {name: cadence(t[field], t.steps) for name, field in CADENCES.items()}
    if evaluate.metric_names(config.eval):
        cadences["evaluation"] = cadence(config.eval.every, t.steps)
    return RunSummary(
        method=config.method,
        example_shape=experiment.example_shape,
        phases=tuple(
            {"name": p.name, "network": p.network, "every": p.every, "repeats": p.repeats} for p in method.phases
        ),
        devices=num_devices,
        processes=jax.process_count(),
        global_batch=t.batch_size,
        per_device_batch=t.batch_size // num_devices,
        images_per_step=experiment.images_per_step,
        steps=t.steps,
        kimg=t.steps * experiment.images_per_step / 1000,
        optimizers={name: dict(o) for name, o in optimization.optimizers.items()},
        ema_decay=optimization.ema_decay,
        ema_half_life_steps=half_life,
        ema_half_life_kimg=half_life_kimg,
        ema_rampup=optimization.ema_rampup,
        ema_rampup_end_kimg=half_life_kimg / optimization.ema_rampup if optimization.ema_rampup > 0 else None,
        cadences=cadences,
        parameters={
            name: int(parameter_overview.count_parameters(params))
            for name, params in abstract_params(experiment).items()
        },
        resume_step=_resume_step(experiment, workdir),
    )


def _resume_step(experiment: build.Experiment, workdir: str) -> int | None:
    """The workdir's newest checkpoint, checked to hold this config's model (CheckpointError if not); None if none."""
    checkpointer = checkpoints.Checkpointer(workdir, None, create=False)
    try:
        step = checkpointer.latest_step()
        if step is not None:
            checkpointer.check_compatible(step, build.abstract_state(experiment))
        return step
    finally:
        checkpointer.close()


def _steps_text(c: Cadence) -> str:
    shown = c.steps if len(c.steps) <= 6 else (*c.steps[:3], "...", *c.steps[-2:])
    return f"every {c.every} steps and the last: {', '.join(map(str, shown))} ({len(c.steps)} in all)"


def format_summary(summary: RunSummary, config: ml_collections.ConfigDict, tables: dict[str, str] | None = None) -> str:
    """The dry run's report: the resolved config, the parameter ``tables``, then the numbers of ``summary``."""
    s = summary
    lines = ["Resolved config:", str(config).rstrip(), ""]
    for name, table in (tables or {}).items():
        lines += [f"Parameters of {name}:", table, ""]
    lines.append(f"Method {s.method}, examples of shape {s.example_shape}.")
    lines.append("Phases, in order (each runs every k-th step from the first one on, r times in a row):")
    for p in s.phases:
        lines.append(f"  {p['name']:<6} trains {p['network']}  k={p['every']}  r={p['repeats']}")
    lines += [
        f"Devices: {s.devices} in {s.processes} process(es); global batch {s.global_batch}, "
        f"{s.per_device_batch} per device; {s.images_per_step} real images per step.",
        f"Length: {s.steps} steps, {s.kimg:g} kimg.",
        "Optimizers (as applied):",
    ]
    for name, o in s.optimizers.items():
        lines.append(f"  {name}: {o['name']} lr={o['lr']:.6g} b1={o['b1']:.6g} b2={o['b2']:.6g}")
    ema = (
        f"EMA of G: decay {s.ema_decay:.6g} per step, half-life {s.ema_half_life_steps:.4g} steps "
        f"({s.ema_half_life_kimg:.4g} kimg)"
    )
    if s.ema_rampup > 0:
        ema += f", at most {s.ema_rampup:g} x images seen until {s.ema_rampup_end_kimg:.4g} kimg"
    lines.append(ema + ".")
    lines.append("Parameters: " + ", ".join(f"{name} {n:,}" for name, n in s.parameters.items()) + ".")
    for name, c in s.cadences.items():
        lines.append(f"{name.capitalize()}: {_steps_text(c)}.")
    if "evaluation" not in s.cadences:
        lines.append("Evaluation: none (eval.metrics is empty).")
    lines.append(
        f"Resumes from the workdir's checkpoint of step {s.resume_step}."
        if s.resume_step is not None
        else "Starts from scratch (no checkpoint in the workdir)."
    )
    return "\n".join(lines)
