r"""StyleGAN2 (+CLR) train-step throughput: the project's jitted step against the official PyTorch code.

    python bench/stylegan2_step.py --cfg=tiny_clr --reference_repo=/path/to/CLR-GAN
    python bench/stylegan2_step.py --cfg=cifar_clr --reference_repo=/path/to/CLR-GAN --rounds=2
    python bench/stylegan2_step.py --cfg=cifar --reference_repo=/path/to/stylegan2-ada-pytorch
    python bench/stylegan2_step.py --quick    # a smoke run: a micro tiny at 8 px without path length, JAX only
    # on a GPU/TPU: JAX's s/kimg at 256 px
    python bench/stylegan2_step.py --cfg=paper256_clr --batch_size=64 --compute_dtype=bfloat16 --cycles=4

``--cfg`` is an argument of configs/stylegan2.py (``<cfg>[_clr][,<resolution>]``), read from that
file at run time; ``--batch_size`` replaces its batch. Images are random uint8 (no data pipeline,
no augmentation). A step runs the phases the training loop runs at that step: g and d every step,
g_reg every train.g_reg_interval steps and d_reg every train.d_reg_interval (for the official cfgs
4 and 16; cifar has no path length, so no g_reg), then G's EMA. A cycle is the least common
multiple of the intervals (16 steps), so every phase runs in its proportion. Each phase combination
is compiled (JAX; compile time reported apart) and then run once untimed by both implementations
before the rounds.

The official step (``--reference_repo``, a local copy of the official repository; its code is
imported from there at run time, never copied): StyleGAN2-ADA's networks and StyleGAN2Loss for the
plain cfgs, CLR-GAN's (github.com/Petecheco/CLR-GAN) for the _clr cfgs, run through the official
training loop's phase procedure by `bench/stylegan2_reference.py`. Both sides build the same
networks in float32 (the official num_fp16_res=0, conv_clamp as the cfg says), with the cfg's
mapping depth, channel base and max, architectures, minibatch-std group, R1 gamma, path-length
weight, style mixing, lazy-regularised Adam and EMA. Without ``--reference_repo`` only JAX is timed.

Threads: both frameworks get ``--threads`` cores (default: all); the process is pinned to them
before JAX starts. Each round times ``--cycles`` cycles of one implementation then of the other
(the order alternates). The table shows the median seconds per step over rounds with the spread,
images/s and s/kimg (the official training log's sec/kimg, for the same batch); the last line is
the JAX/official images/s ratio, or without a reference JAX's s/kimg.

On an accelerator, the 256 px command above compares with the official README's table (sec/kimg
from the training log, V100s, cfg auto with ADA augmentation and fp16 in the top 4 resolutions):
21.6-24.2 s/kimg on 1 GPU (batch 16), 4.4-5.5 on 8 GPUs (batch 64). ``--compute_dtype=bfloat16``
is the counterpart of the official fp16; this bench runs no augmentation and no data pipeline,
and ``--cfg=auto_clr,256 --batch_size=16`` is the 1-GPU row's cfg.
"""

import importlib.util
import math
import os
import statistics
import time

import jax
import numpy as np
import stylegan2_reference  # bench/ is on sys.path when this file runs as a script
import torch
from absl import app, flags
from timing import pin_threads

from clr_gan_jax import build, sharding, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK_CFG, QUICK_BATCH, QUICK_CYCLE = "tiny_clr,8", 8, 4
# --quick's networks: 16 channels, z = w = the epilogue's 16 features. The step's compile time hardly
# depends on the sizes: the smoke run, which checks that the bench runs, leaves out the path-length phase
# (its double backward through G is most of the compile) and compiles without the backend's optimisations.
QUICK_OVERRIDES = {
    "model.z_dim": 16,
    "model.w_dim": 16,
    "model.mapping_layers": 1,
    "model.channel_base": 64,
    "model.channel_max": 16,
    "loss.pl_weight": 0.0,
}
QUICK_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

_CFG = flags.DEFINE_string("cfg", "tiny_clr", "configs/stylegan2.py's argument: <cfg>[_clr][,<resolution>].")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Real images per step (replaces the cfg's batch).")
_COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype",
    "float32",
    ["float32", "bfloat16"],
    "JAX's model.compute_dtype in the top num_fp16_res resolutions (bfloat16: the official mixed precision, for "
    "GPU/TPU; the official CPU step is float32, so no --reference_repo with it).",
)
_CYCLES = flags.DEFINE_integer("cycles", 1, "Timed cycles (of 16 steps) per implementation and round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed rounds; each times both implementations.")
_THREADS = flags.DEFINE_integer("threads", 0, "Cores for both frameworks (0: all cores of this process).")
_REFERENCE_REPO = flags.DEFINE_string(
    "reference_repo", None, "Local copy of the official repository: StyleGAN2-ADA, or CLR-GAN for _clr cfgs."
)
_QUICK = flags.DEFINE_bool(
    "quick",
    False,
    f"Smoke run, JAX only: cfg {QUICK_CFG} with 16 channels and no path length, batch {QUICK_BATCH}, 1 round of a "
    f"{QUICK_CYCLE}-step cycle, compiled without XLA's backend optimisations.",
)


def load_config(cfg: str, batch_size: int):
    spec = importlib.util.spec_from_file_location("stylegan2_configs", os.path.join(REPO, "configs", "stylegan2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        config = module.get_config(cfg)
    except ValueError as e:
        raise app.UsageError(f"--cfg={cfg}: {e}") from None
    config.train.batch_size = batch_size
    return config


def schedule(experiment: build.Experiment, cycle: int) -> tuple[list[tuple[str, ...]], int]:
    """(the active phases of each step of a cycle, the steps from the start until every combination has run)."""
    steps = [experiment.method.active_phases(i) for i in range(cycle)]
    combinations = set(steps)
    warmup = next(n for n in range(1, cycle + 1) if set(steps[:n]) == combinations)
    return steps, warmup


def jax_runner(
    experiment: build.Experiment, reals: np.ndarray, steps: list[tuple[str, ...]], compiler_options: dict | None
):
    """(compile seconds, run(n) -> seconds for the next n steps of the cycle) for the project's jitted step.

    Prints each compiled step's temporary memory (XLA's buffer assignment; the state and batch come on top).
    """
    mesh = sharding.make_mesh(jax.devices()[:1])
    state = build.initial_state(experiment, mesh)
    batch = train.step_batch({"image": reals}, experiment.method.real_batches, mesh)
    step_fn = build.train_step_fn(experiment, mesh)
    start = time.perf_counter()
    compiled = {
        active: step_fn.lower(state, batch, active).compile(compiler_options) for active in dict.fromkeys(steps)
    }
    compile_seconds = time.perf_counter() - start
    for active, executable in compiled.items():
        temp = executable.memory_analysis().temp_size_in_bytes
        print(f"jax: {'+'.join(active)} compiled, {temp / 2**20:.0f} MiB of temporaries", flush=True)
    position = 0

    def run(n: int) -> float:
        nonlocal state, position
        start = time.perf_counter()
        for _ in range(n):
            state, metrics = compiled[steps[position % len(steps)]](state, batch)
            position += 1
        jax.block_until_ready((state, metrics))
        return time.perf_counter() - start

    return compile_seconds, run


def official_runner(repo: str, experiment: build.Experiment, reals: np.ndarray, threads: int):
    """(settings line, run(n) -> seconds for the next n steps) for the official step."""
    torch.set_num_threads(threads)
    networks, loss = stylegan2_reference.import_official(repo, experiment.config.clr.enabled)
    step = stylegan2_reference.OfficialStep(networks, loss, experiment.config, experiment.example_shape)
    images = torch.from_numpy(reals.transpose(0, 3, 1, 2).copy())

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            step(images)
        return time.perf_counter() - start

    return step.settings(), run


def settings_line(experiment: build.Experiment) -> str:
    c = experiment.config
    m, loss, t = c.model, c.loss, c.train
    params = jax.eval_shape(experiment.method.init_variables, jax.random.key(0))
    count = lambda tree: sum(math.prod(x.shape) for x in jax.tree.leaves(tree["params"]))  # noqa: E731
    settings = [
        f"{experiment.example_shape[0]} px",
        f"z {m.z_dim}, w {m.w_dim}, mapping {m.mapping_layers}",
        f"channels {m.channel_base}/{m.channel_max}, G {m.g_architecture}, D {m.d_architecture}",
        f"mbstd {m.mbstd_group_size}, conv_clamp {m.conv_clamp or None}",
        f"{m.compute_dtype} in the top {m.num_fp16_res} resolutions, float32 elsewhere",
        f"batch {t.batch_size}, r1_gamma {loss.r1_gamma}, pl_weight {loss.pl_weight}",
        f"style mixing {loss.style_mixing_prob}, clr {c.clr.enabled}, lr {c.optim.g_lr}/{c.optim.d_lr}",
        f"reg intervals {t.g_reg_interval}/{t.d_reg_interval}",
    ]
    return (
        ", ".join(settings) + f"; jax G {count(params['g']) / 1e6:.2f}M, D {count(params['d']) / 1e6:.2f}M parameters"
    )


def main(argv):
    del argv
    quick = _QUICK.value
    threads = pin_threads(_THREADS.value)
    cfg, batch_size = (QUICK_CFG, QUICK_BATCH) if quick else (_CFG.value, _BATCH_SIZE.value)
    rounds, cycles, repo = (1, 1, None) if quick else (_ROUNDS.value, _CYCLES.value, _REFERENCE_REPO.value)
    if repo and _COMPUTE_DTYPE.value != "float32":
        raise app.UsageError("--reference_repo times the official step in float32: leave --compute_dtype=float32")
    config = load_config(cfg, batch_size)
    config.model.compute_dtype = _COMPUTE_DTYPE.value
    if quick:
        config.update_from_flattened_dict(QUICK_OVERRIDES)
    # the cfg's resolution and channels, so that no dataset is needed (the images are random)
    d = config.data
    experiment = build.build(config, example_shape=(d.resolution, d.resolution, d.channels))
    t = experiment.config.train
    cycle = QUICK_CYCLE if quick else math.lcm(t.g_reg_interval, t.d_reg_interval)
    steps, warmup = schedule(experiment, cycle)
    reals = np.random.default_rng(0).integers(0, 256, (batch_size, *experiment.example_shape), dtype=np.uint8)

    print(f"{cfg}: {settings_line(experiment)}", flush=True)
    compile_seconds, run_jax = jax_runner(experiment, reals, steps, QUICK_COMPILER_OPTIONS if quick else None)
    print(f"jax: {len(set(steps))} phase combinations compiled in {compile_seconds:.1f} s", flush=True)
    runners, setup = [("jax", run_jax)], {"jax": f"compile {compile_seconds:.1f}"}
    if repo:
        official_settings, run_official = official_runner(repo, experiment, reals, threads)
        print(official_settings, flush=True)
        runners.append(("official", run_official))
    for impl, run in runners:
        seconds = run(warmup)
        setup.setdefault(impl, f"warm-up {seconds:.1f}")
        print(f"{impl}: {warmup} warm-up steps in {seconds:.1f} s", flush=True)
    per_step = {impl: [] for impl, _ in runners}
    for r in range(rounds):
        for impl, run in runners if r % 2 == 0 else runners[::-1]:
            per_step[impl].append(run(cycles * cycle) / (cycles * cycle))
            print(f"round {r + 1}/{rounds} {impl}: {per_step[impl][-1]:.4f} s/step", flush=True)

    print(
        f"\njax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, {threads} threads each, "
        f"{rounds} rounds of {cycles} x {cycle} steps, {len(set(steps))} phase combinations, "
        f"median (min-max) seconds per step"
    )
    header = f"{'cfg':<14} {'impl':<9} {'batch':>5} {'setup s':>16} {'s/step':>26} {'images/s':>9} {'s/kimg':>8}"
    print(header)
    print("-" * len(header))
    for impl, times in per_step.items():
        median = statistics.median(times)
        spread = f"{median:.4f} ({min(times):.4f}-{max(times):.4f})"
        print(
            f"{cfg:<14} {impl:<9} {batch_size:>5} {setup[impl]:>16} {spread:>26} {batch_size / median:>9.2f} "
            f"{median * 1000 / batch_size:>8.1f}"
        )
    print()
    jax_median = statistics.median(per_step["jax"])
    if repo:
        ratio = statistics.median(per_step["official"]) / jax_median
        print(f"{cfg} batch {batch_size}: jax / official images/s = {ratio:.2f}")
    else:
        device = jax.devices()[0].device_kind
        print(f"{cfg} batch {batch_size}: jax {jax_median * 1000 / batch_size:.1f} s/kimg on {device}")


if __name__ == "__main__":
    app.run(main)
