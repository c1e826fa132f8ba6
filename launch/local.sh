#!/usr/bin/env bash
# N training processes on this machine, K CPU devices each: a rehearsal of a multi-host run.
#
#   launch/local.sh N K --config=configs/digits_dcgan_clr.py --workdir=runs/digits_2x4
#
# Every process runs `python -m clr_gan_jax.main` with the given arguments plus
# --coordinator_address=127.0.0.1:<free port> --num_processes=N --process_id=i.
# Output lines are prefixed with the process id. If one process fails, the others
# are stopped, and the script exits with the failed process's status.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 NUM_PROCESSES DEVICES_PER_PROCESS ARGS_FOR_clr_gan_jax.main..." >&2
  exit 2
fi
num_processes=$1
devices=$2
shift 2
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_all INT TERM

for ((i = 0; i < num_processes; i++)); do
  XLA_FLAGS="--xla_force_host_platform_device_count=$devices" "$python" -u -m clr_gan_jax.main "$@" \
    --coordinator_address="127.0.0.1:$port" --num_processes="$num_processes" --process_id="$i" \
    > >(sed -u "s/^/[$i] /") 2>&1 &
  pids+=($!)
done

status=0
running=("${pids[@]}")
while [ "${#running[@]}" -gt 0 ]; do
  set +e
  wait -n -p finished "${running[@]}"  # bash >= 5.1
  code=$?
  set -e
  still=()
  for pid in "${running[@]}"; do [ "$pid" = "$finished" ] || still+=("$pid"); done
  running=("${still[@]}")
  if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then
    status=$code
    stop_all
  fi
done
exit "$status"
