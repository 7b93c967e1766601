#!/usr/bin/env bash
# Copies a run's work directory back from worker 0 (for local workdirs; a gs:// workdir is
# already reachable with `gcloud storage cp -r`).
#   launch/tpu/copy_results.sh runs/q4b ./results/q4b
source "$(dirname "$0")/env.sh"
if [ $# -ne 2 ]; then
  echo "usage: $0 <remote workdir, relative to the checkout> <local destination>" >&2
  exit 2
fi
mkdir -p "$2"
gcloud compute tpus tpu-vm scp --recurse --zone="$ZONE" $PROJECT_FLAG --worker=0 \
  "$TPU_NAME:$REMOTE_DIR/$1" "$2"
