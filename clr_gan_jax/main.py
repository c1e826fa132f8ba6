"""Command line: train, sample, export, evaluate, generate from or import into a CLR-GAN run.

  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=runs/digits
  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=runs/digits --mode=sample
  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=runs/digits --mode=export
  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=runs/digits --mode=evaluate
  python -m clr_gan_jax.main --config=configs/stylegan2.py:paper256_clr --workdir=runs/ffhq --mode=import \
      --weights=weights.pth
  python -m clr_gan_jax.main --config=configs/stylegan2.py:paper256_clr --workdir=runs/ffhq --mode=generate \
      --seeds=0-7 --trunc=0.7
  python -m clr_gan_jax.main --config=configs/stylegan2.py:paper256_clr --workdir=runs/ffhq --mode=generate \
      --interpolate=3,7,9
  python -m clr_gan_jax.main --config=configs/digits_infogan.py:infogan --workdir=runs/infogan --mode=traverse
  python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=runs/digits --dry_run
  python -m clr_gan_jax.main --workdir=runs/digits --mode=plot

Override config values with --config.<field>=<value>, e.g. --config.train.steps=500.
"""

import logging as std_logging
import os
import re
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from clr_gan_jax import distributed, evaluate, export, generate, official_import, plot, run_summary, train, traverse
from clr_gan_jax.errors import TrainingDivergedError, UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file, optionally path:argument (every mode but plot).", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory: checkpoints, samples, metrics. Training resumes from it."
)
_MODE = flags.DEFINE_enum(
    "mode",
    "train",
    ["train", "sample", "export", "evaluate", "generate", "import", "plot", "traverse"],
    "What to do with the run (plot: draw metrics.jsonl's curves into one PNG; traverse: one PNG whose rows vary "
    "one latent code (InfoGAN) or layer coordinate (EigenGAN), see clr_gan_jax/traverse.py).",
)
_DRY_RUN = flags.DEFINE_bool(
    "dry_run",
    False,
    "--mode=train: check the config, data, workdir and devices, print what the run would do (config, phases, "
    "batch per device, learning rates and betas as applied, EMA half-life, steps, kimg, when it logs, samples, "
    "evaluates and saves), and exit without writing anything.",
)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "--mode=sample: how many samples to draw.")
_SAMPLE_SEED = flags.DEFINE_integer("sample_seed", 0, "--mode=sample|traverse: seed of the (base) latents.")
_COLUMNS = flags.DEFINE_integer(
    "columns", 9, "--mode=traverse: columns of the picture, and values in each sweep of a continuous code."
)
_SPAN = flags.DEFINE_float("span", 2.0, "--mode=traverse: continuous codes and coordinates sweep -span..span.")
_OUTPUT = flags.DEFINE_string(
    "output",
    None,
    "sample: PNG path (default <workdir>/samples/sample_<step>.png); traverse: PNG path (default "
    "<workdir>/samples/traverse_<step>_seed<sample_seed>.png); "
    "export: .npz path (default <workdir>/export/generator.npz); plot: PNG path (default <workdir>/curves.png).",
)
_STEP = flags.DEFINE_integer(
    "step", None, "--mode=sample|export|generate|traverse: the checkpoint's step (default: the latest)."
)
_SEEDS = flags.DEFINE_string("seeds", "0-7", "--mode=generate: seeds, like 0-7,12 (one seed%04d.png each).")
_TRUNC = flags.DEFINE_float("trunc", 1.0, "--mode=generate: truncation psi (stylegan2).")
_NOISE_MODE = flags.DEFINE_enum(
    "noise_mode", "const", ["const", "random", "none"], "--mode=generate: the synthesis noise (stylegan2)."
)
_CLASS_IDX = flags.DEFINE_integer("class_idx", None, "--mode=generate: the class of a conditional model.")
_OUTDIR = flags.DEFINE_string("outdir", None, "--mode=generate: where to write (default <workdir>/generated).")
_INTERPOLATE = flags.DEFINE_string(
    "interpolate",
    None,
    "--mode=generate: seedA,seedB,steps writes one strip interp_seedA-seedB.png of `steps` images from seed A's "
    "latent to seed B's, instead of one image per seed: linearly in w for stylegan2 (both z mapped, --trunc "
    "applied), linearly in z for the zoo's generators (no mapping network).",
)
_WEIGHTS = flags.DEFINE_string(
    "weights", None, "--mode=import: a .pth of official state dicts {'G', 'D', 'G_ema'} (see the README)."
)
_CHECKPOINTS = flags.DEFINE_string("checkpoints", "latest", "--mode=evaluate: latest, all, or steps like 1000,2000.")
_IMAGES = flags.DEFINE_string(
    "images", "", "--mode=evaluate: a folder or zip of images to evaluate instead of checkpoints."
)
# Multi-process runs (TPU pods and SLURM are detected without these; see launch/).
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, when not on a TPU pod or SLURM."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes, with --coordinator_address.")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index in [0, num_processes), with --coordinator_address."
)
_INIT_TIMEOUT = flags.DEFINE_integer("init_timeout", 300, "Seconds to wait at start-up for all processes to join.")
_HEARTBEAT_TIMEOUT = flags.DEFINE_integer(
    "heartbeat_timeout", 100, "Seconds of silence after which a process counts as dead."
)
flags.mark_flags_as_required(["workdir"])


def _show_only_own_info_logs():
    """Libraries (orbax, jax) log dozens of INFO lines per checkpoint; keep their warnings, drop their chatter."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= std_logging.WARNING or record.pathname.startswith(package_dir)
    )


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments {' '.join(argv[1:])!r}: every option is a --flag (see --help)")
    if not flags.FLAGS["verbosity"].present:
        _show_only_own_info_logs()
    config, workdir = _CONFIG.value, _WORKDIR.value
    if _DRY_RUN.value and _MODE.value != "train":
        _fail(f"--dry_run checks a training run: it does not go with --mode={_MODE.value}")
    if _INTERPOLATE.value is not None and _MODE.value != "generate":
        _fail(f"--interpolate is for --mode=generate, not --mode={_MODE.value}")
    if config is None and _MODE.value != "plot":
        _fail(f"--config is required for --mode={_MODE.value}")
    try:
        if _MODE.value == "plot":
            logging.info("Wrote %s", plot.plot_run(workdir, _OUTPUT.value))
            return
        if distributed.initialize(
            _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _INIT_TIMEOUT.value, _HEARTBEAT_TIMEOUT.value
        ):
            distributed.check_same_config(config, workdir, _MODE.value)
        if _MODE.value == "train" and _DRY_RUN.value:
            mesh, experiment, _, _ = train.check_run(config, workdir)
            summary = run_summary.summarize(experiment, mesh.size, workdir)
            print(run_summary.format_summary(summary, config, run_summary.parameter_tables(experiment)))
        elif _MODE.value == "train":
            train.train_and_evaluate(config, workdir)
        elif _MODE.value == "sample":
            path = export.write_sample_grid(
                config, workdir, _NUM_SAMPLES.value, _SAMPLE_SEED.value, _OUTPUT.value, _STEP.value
            )
            logging.info("Wrote %s", path)
        elif _MODE.value == "traverse":
            path = traverse.write_traverse_grid(
                config, workdir, _COLUMNS.value, _SPAN.value, _SAMPLE_SEED.value, _OUTPUT.value, _STEP.value
            )
            logging.info("Wrote %s", path)
        elif _MODE.value == "evaluate":
            evaluate.run(config, workdir, _CHECKPOINTS.value, _IMAGES.value)
        elif _MODE.value == "generate" and _INTERPOLATE.value is not None:
            path = generate.interpolation_strip(
                config,
                workdir,
                *generate.parse_interpolation(_INTERPOLATE.value),
                _OUTDIR.value or os.path.join(workdir, "generated"),
                trunc=_TRUNC.value,
                noise_mode=_NOISE_MODE.value,
                class_idx=_CLASS_IDX.value,
                step=_STEP.value,
            )
            logging.info("Wrote %s", path)
        elif _MODE.value == "generate":
            outdir = _OUTDIR.value or os.path.join(workdir, "generated")
            paths = generate.generate_images(
                config,
                workdir,
                generate.parse_seeds(_SEEDS.value),
                outdir,
                trunc=_TRUNC.value,
                noise_mode=_NOISE_MODE.value,
                class_idx=_CLASS_IDX.value,
                step=_STEP.value,
            )
            logging.info("Wrote %d images to %s", len(paths), outdir)
        elif _MODE.value == "import":
            logging.info("Wrote %s", official_import.import_official(config, workdir, _WEIGHTS.value))
        else:
            path = export.export_run(config, workdir, _OUTPUT.value, _STEP.value)
            logging.info("Wrote %s and %s", path, os.path.splitext(path)[0] + ".json")
    except train.Interrupted as e:
        print(str(e), file=sys.stderr, flush=True)
        sys.exit(128 + e.signum)
    except (UserError, TrainingDivergedError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted before training started: nothing to save", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with config-file and unknown-field errors as one line instead of a traceback."""
    try:
        remaining = flags.FLAGS(argv)
        if _CONFIG.value is not None:
            _ = _CONFIG.value.to_dict()  # ml_collections reports a config file it cannot load only when read
        return remaining
    except flags.Error as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        _fail(lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}")  # drop an embedded traceback
    except OSError as e:
        _fail(f"--config: {str(e).strip().splitlines()[-1].strip()}")
    except ValueError as e:  # raised by a config file's get_config, e.g. for an unknown variant argument
        _fail(f"--config: {e}")
    except AttributeError as e:
        name = re.search(r"(\w+)", str(e)).group(1)
        suggestion = re.search(r'Did you mean "(\w+)"', str(e))
        hint = f'; did you mean "{suggestion.group(1)}"?' if suggestion else ""
        _fail(f"unknown config field {name!r} in a --config.* override{hint}")


def run():
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
