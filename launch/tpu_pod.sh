#!/usr/bin/env bash
# Train on a Cloud TPU pod slice: the same command on every host; JAX finds the other hosts itself.
#
#   export TPU=my-v4-32 ZONE=us-central2-b
#   launch/tpu_pod.sh setup                  # copy this repository to every host, install it with jax[tpu]
#   launch/tpu_pod.sh train --config=configs/cifar10_zoo.py:dcgan_clr --workdir=/mnt/runs/cifar10
#
# --workdir must be one directory shared by all hosts (checkpoints are written by every host,
# metrics and samples by host 0), e.g. a Cloud Storage bucket mounted with gcsfuse at the
# same path on every worker:
#   launch/tpu_pod.sh exec "mkdir -p /mnt/runs && gcsfuse --implicit-dirs MY_BUCKET /mnt/runs"
# Restarting the same `train` command resumes from the last checkpoint.
set -euo pipefail

: "${TPU:?set TPU to the TPU VM name}"
: "${ZONE:?set ZONE to its zone}"
remote_dir=${REMOTE_DIR:-clr_gan_jax}

on_all_hosts() {
  gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="$1"
}

command=${1:-}
shift || true
case "$command" in
  setup)
    cd "$(dirname "$0")/.."
    on_all_hosts "rm -rf ~/$remote_dir && mkdir -p ~/$remote_dir"
    gcloud compute tpus tpu-vm scp --recurse --zone="$ZONE" --worker=all \
      setup.cfg pyproject.toml README.md clr_gan_jax configs "$TPU:~/$remote_dir/"
    on_all_hosts "cd ~/$remote_dir && python3 -m pip install -q -U 'jax[tpu]' -e ."
    ;;
  train)
    on_all_hosts "cd ~/$remote_dir && python3 -m clr_gan_jax.main $(printf '%q ' "$@")"
    ;;
  exec)
    on_all_hosts "$*"
    ;;
  *)
    echo "usage: $0 setup | train ARGS_FOR_clr_gan_jax.main... | exec COMMAND" >&2
    exit 2
    ;;
esac
