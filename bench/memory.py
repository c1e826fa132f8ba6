"""Peak host memory and RSS growth of a command (normally the training job), sampled from /proc.

  python bench/memory.py -- python -m clr_gan_jax.main --config=configs/digits_dcgan_clr.py --workdir=/tmp/mem_check
  python bench/memory.py --interval=10 --csv=/tmp/ring8_rss.csv -- \
      python -m clr_gan_jax.main --config=configs/ring8.py --workdir=/tmp/mem_ring8 --config.train.steps=10000

Runs the command, samples the resident set size of it and its descendants every
``--interval`` seconds, and prints: the peak RSS (the kernel's max RSS of the child,
from wait4), the RSS at quarters of the run, and a least-squares slope of RSS over
time after the first quarter (warm-up and compilation excluded), the figure that
shows a leak. The workdir should be fresh: a finished checkpoint makes the job exit.
"""

import argparse
import csv
import os
import resource
import subprocess
import sys
import time

import numpy as np


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (threads' children included)."""
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    queue.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def rss_kib(pid: int) -> int:
    """Summed VmRSS (KiB) of ``pid`` and its descendants; 0 for processes that are gone."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def growth_mib_per_min(times: np.ndarray, rss_mib: np.ndarray) -> float:
    """Slope of RSS over the last three quarters of the run."""
    keep = times >= times[-1] / 4
    if keep.sum() < 3:
        return float("nan")
    return float(np.polyfit(times[keep] / 60.0, rss_mib[keep], 1)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--csv", default="", help="optional file for the (seconds, rss_mib) samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")

    start = time.monotonic()
    child = subprocess.Popen(command)
    samples = []
    # written as it goes: a killed run keeps its samples
    log = open(args.csv, "w", newline="") if args.csv else None  # noqa: SIM115
    if log:
        csv.writer(log).writerow(("seconds", "rss_mib"))
    while child.poll() is None:
        samples.append((time.monotonic() - start, rss_kib(child.pid) / 1024.0))
        if log:
            csv.writer(log).writerow(samples[-1])
            log.flush()
        time.sleep(args.interval)
    if log:
        log.close()
    # poll() already reaped the child; its peak comes from the rusage of reaped children.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    elapsed = time.monotonic() - start
    samples = [s for s in samples if s[1] > 0]
    times, rss = (np.array(column) for column in zip(*samples)) if samples else (np.zeros(0), np.zeros(0))

    print(f"\ncommand: {' '.join(command)}")
    print(f"exit code {child.returncode}, {elapsed:.0f} s, {len(samples)} samples every {args.interval:g} s")
    print(f"{'point':>14} | {'seconds':>8} | {'RSS MiB':>8}")
    for fraction in (0.25, 0.5, 0.75, 1.0):
        if len(times):
            i = min(int(fraction * (len(times) - 1) + 0.5), len(times) - 1)
            print(f"{f'{fraction:.0%} of run':>14} | {times[i]:8.0f} | {rss[i]:8.1f}")
    if len(times):
        print(f"{'max sampled':>14} | {times[rss.argmax()]:8.0f} | {rss.max():8.1f}")
        print(f"RSS growth after the first quarter: {growth_mib_per_min(times, rss):+.2f} MiB/min")
    print(f"peak RSS (max RSS of the child, kernel): {peak_mib:.1f} MiB")
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
