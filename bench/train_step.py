r"""Train-step throughput, images/s: the `gan` method's jitted train step against the same step in PyTorch.

    python bench/train_step.py                                  # DCGAN+CLR at batch 64, then Ring8 MLP
    python bench/train_step.py --benchmarks=dcgan --batch_size=512 --steps=1 --rounds=3
    python bench/train_step.py --benchmarks=mlp --rounds=7
    python bench/train_step.py --jax_dtype=bfloat16 --torch_dtype=bfloat16  # mixed precision in both

dcgan: the GAN zoo's CIFAR-10 SimpleCNN (32x32, width 1024, z 100), vanilla loss + CLR
(w_clr 5, w_rec 0.5, MSE), Adam 8e-4 (0.5, 0.999), EMA 0.999. n_critic defaults to 1
(the zoo trains with 5) to keep a step short on a CPU; images/s counts real images,
n_critic * batch per step, so it barely depends on n_critic.
mlp: the Ring8 SimpleMLP (z 32), batch 256, n_critic 5, Adam 3e-4, no EMA (a copy of G).
The PyTorch step (`bench/torch_reference.py`) does the same work in the same process.

Precision (dcgan only; the mlp is float32): ``--jax_dtype=bfloat16`` sets model.matmul_dtype
(bfloat16 operands for the forward and input-gradient products, everything else float32);
``--torch_dtype=bfloat16`` runs PyTorch's forward passes under CPU autocast. Compare like with
like: the float32 pair is the same arithmetic, and each bfloat16 mode is its framework's
usual mixed precision, not the same rounding.

Threads: both frameworks get ``--threads`` cores (default: all). The process is pinned to
that many cores before JAX starts (XLA:CPU sizes its thread pools from the affinity
mask) and torch.set_num_threads gets the same number. JAX's compile time and PyTorch's
first steps are reported apart and not timed. Each round times ``--steps`` steps of one
implementation then of the other (the order alternates); the table shows the median
seconds per step over rounds with the spread, and the JAX/PyTorch throughput ratio last.
"""

import statistics
import time

import jax
import numpy as np
import torch
import torch_reference as ref  # bench/ is on sys.path when this file runs as a script
from absl import app, flags
from timing import pin_threads

from clr_gan_jax import build, sharding, train
from clr_gan_jax.default_config import base_config

_BENCHMARKS = flags.DEFINE_list("benchmarks", ["dcgan", "mlp"], "Which benchmarks to run: dcgan, mlp.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "dcgan: real images per D step.")
_N_CRITIC = flags.DEFINE_integer("n_critic", 1, "dcgan: D steps per G step.")
_WIDTH = flags.DEFINE_integer("width", 1024, "dcgan: channels at 4x4 in G and D.")
_STEPS = flags.DEFINE_integer("steps", 2, "dcgan: timed train steps per implementation and round.")
_MLP_BATCH_SIZE = flags.DEFINE_integer("mlp_batch_size", 256, "mlp: points per D step.")
_MLP_N_CRITIC = flags.DEFINE_integer("mlp_n_critic", 5, "mlp: D steps per G step.")
_MLP_STEPS = flags.DEFINE_integer("mlp_steps", 50, "mlp: timed train steps per implementation and round.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed rounds; each times both implementations.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps of each implementation before the rounds.")
_THREADS = flags.DEFINE_integer("threads", 0, "Cores for both frameworks (0: all cores of this process).")
_JAX_DTYPE = flags.DEFINE_enum(
    "jax_dtype", "float32", ["float32", "bfloat16"], "dcgan: JAX's matrix-product operands (model.matmul_dtype)."
)
_TORCH_DTYPE = flags.DEFINE_enum(
    "torch_dtype", "float32", ["float32", "bfloat16"], "dcgan: PyTorch's compute dtype (bfloat16: CPU autocast)."
)


def dcgan_config():
    c = base_config()
    c.data.name, c.data.resolution = "cifar10", 32
    c.model.update(arch="dcgan", z_dim=100, g_width=_WIDTH.value, d_width=_WIDTH.value, matmul_dtype=_JAX_DTYPE.value)
    c.optim.update(g_lr=8e-4, d_lr=8e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=_BATCH_SIZE.value, n_critic=_N_CRITIC.value, ema_decay=0.999)
    return c


def mlp_config():
    """configs/ring8.py's CLR variant."""
    c = base_config()
    c.data.name = "ring8"
    c.model.update(arch="mlp", z_dim=32, hidden=256, depth=2, batch_norm=False)
    c.optim.update(g_lr=3e-4, d_lr=3e-4, b1=0.5, b2=0.999)
    c.train.update(batch_size=_MLP_BATCH_SIZE.value, n_critic=_MLP_N_CRITIC.value, ema_decay=0.0)
    return c


def jax_step(config):
    """Returns (compile seconds, run(n) -> seconds for n steps) for the jitted train step."""
    mesh = sharding.make_mesh(jax.devices()[:1])
    experiment = build.build(config)
    state = build.initial_state(experiment, mesh)
    reals = make_reals(config, np.random.default_rng(0))
    batch = train.step_batch({"image": reals.reshape(-1, *reals.shape[2:])}, config.train.n_critic, mesh)
    active = experiment.method.active_phases(0)
    start = time.perf_counter()
    compiled = build.train_step_fn(experiment, mesh).lower(state, batch, active).compile()
    compile_seconds = time.perf_counter() - start

    def run(n: int) -> float:
        nonlocal state
        start = time.perf_counter()
        for _ in range(n):
            state, metrics = compiled(state, batch)
        jax.block_until_ready((state, metrics))
        return time.perf_counter() - start

    return compile_seconds, run


def torch_step(config, threads: int):
    """Returns run(n) -> seconds for n steps of the PyTorch reference."""
    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    m = config.model
    if m.arch == "dcgan":
        g = ref.SimpleCNNGenerator(m.z_dim, m.g_width)
        d = ref.SimpleCNNDiscriminator(m.z_dim, m.d_width)
    else:
        g = ref.SimpleMLPGenerator(m.z_dim, m.hidden, m.depth)
        d = ref.SimpleMLPDiscriminator(m.z_dim, m.hidden, m.depth)
    o = config.optim
    step = ref.CLRTrainStep(
        g,
        d,
        m.z_dim,
        config.train.n_critic,
        o.d_lr,
        (o.b1, o.b2),
        config.clr.w_clr,
        config.clr.w_rec,
        config.train.ema_decay,
        getattr(torch, _TORCH_DTYPE.value) if m.arch == "dcgan" else torch.float32,
    )
    reals = make_reals(config, np.random.default_rng(0))
    reals = torch.from_numpy(reals.transpose(0, 1, 4, 2, 3).copy() if reals.ndim == 5 else reals)

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            losses = step(reals)
        float(losses[0])
        return time.perf_counter() - start

    return run


def make_reals(config, rng):
    """One step's real data, (n_critic, B, H, W, C) uint8 images or (n_critic, B, 2) float points."""
    t = config.train
    if config.model.arch == "dcgan":
        r = config.data.resolution
        return rng.integers(0, 256, (t.n_critic, t.batch_size, r, r, 3), dtype=np.uint8)
    return rng.uniform(-1, 1, (t.n_critic, t.batch_size, 2)).astype(np.float32)


def benchmark(name: str, config, steps: int, threads: int) -> dict:
    """Times both implementations in interleaved rounds; returns the figures of the table."""
    compile_seconds, run_jax = jax_step(config)
    run_torch = torch_step(config, threads)
    warm = {"jax": run_jax(_WARMUP.value), "torch": run_torch(_WARMUP.value)}
    per_step = {"jax": [], "torch": []}
    runners = [("jax", run_jax), ("torch", run_torch)]
    for r in range(_ROUNDS.value):
        for impl, run in runners if r % 2 == 0 else runners[::-1]:
            per_step[impl].append(run(steps) / steps)
    t = config.train
    dtypes = {
        "jax": config.model.matmul_dtype,
        "torch": _TORCH_DTYPE.value if config.model.arch == "dcgan" else "float32",
    }
    return {
        "name": name,
        "dtypes": dtypes,
        "batch": t.batch_size,
        "n_critic": t.n_critic,
        "steps": steps,
        "compile": compile_seconds,
        "warm": warm,
        "per_step": per_step,
    }


def print_results(results: list[dict], threads: int):
    print(
        f"\njax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, {threads} threads each, "
        f"{_ROUNDS.value} rounds, median (min-max) seconds per step"
    )
    header = (
        f"{'benchmark':<9} {'impl':<6} {'dtype':<8} {'batch':>5} {'n_crit':>6} {'steps/rnd':>9} {'setup s':>16} "
        f"{'s/step':>24} {'images/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        for impl in ("jax", "torch"):
            times = r["per_step"][impl]
            median = statistics.median(times)
            setup = f"compile {r['compile']:.1f}" if impl == "jax" else f"warm-up {r['warm'][impl]:.1f}"
            spread = f"{median:.4f} ({min(times):.4f}-{max(times):.4f})"
            rate = r["n_critic"] * r["batch"] / median
            print(
                f"{r['name']:<9} {impl:<6} {r['dtypes'][impl]:<8} {r['batch']:>5} {r['n_critic']:>6} {r['steps']:>9} "
                f"{setup:>16} {spread:>24} {rate:>9.1f}"
            )
    print()
    for r in results:
        ratio = statistics.median(r["per_step"]["torch"]) / statistics.median(r["per_step"]["jax"])
        print(
            f"{r['name']} batch {r['batch']}: jax ({r['dtypes']['jax']}) / torch ({r['dtypes']['torch']}) "
            f"images/s = {ratio:.2f}"
        )


def main(argv):
    del argv
    threads = pin_threads(_THREADS.value)
    unknown = set(_BENCHMARKS.value) - {"dcgan", "mlp"}
    if unknown:
        raise app.UsageError(f"--benchmarks takes dcgan and/or mlp, got {sorted(unknown)}")
    results = []
    if "dcgan" in _BENCHMARKS.value:
        results.append(benchmark("dcgan", dcgan_config(), _STEPS.value, threads))
    if "mlp" in _BENCHMARKS.value:
        results.append(benchmark("ring8-mlp", mlp_config(), _MLP_STEPS.value, threads))
    print_results(results, threads)


if __name__ == "__main__":
    app.run(main)
