#!/usr/bin/env bash
# Starts one launcher with one config on every worker at once, DETACHED: each worker runs it under
# setsid/nohup, so a dropped SSH connection (or closing the laptop) does not stop a multi-hour run.
# JAX connects the workers by itself (jax.distributed.initialize; see ssd_jax/parallel/distributed.py).
#
#   launch/tpu/run.sh ssd configs/paper/qwen3_4b_instruct.py --config.workdir=gs://BUCKET/runs/q4b
#
# Each worker writes $REMOTE_DIR/$LOG_DIR/<run>.worker<N>.log and .pid; <run> is $RUN_NAME (default:
# <launcher>-<UTC time>), also recorded in $LOG_DIR/LATEST. Follow it with launch/tpu/status.sh and
# launch/tpu/logs.sh; launch/tpu/stop.sh sends SIGTERM (every host saves a checkpoint, then exits).
# Rerunning the same command resumes where the run stopped.
source "$(dirname "$0")/env.sh"
if [ $# -lt 2 ]; then
  echo "usage: $0 <sample|train|evaluate|ssd> <config file> [--config.field=value ...]" >&2
  exit 2
fi
launcher=$1; config=$2; shift 2
RUN_NAME=${RUN_NAME:-$launcher-$(date -u +%Y%m%d-%H%M%S)}
args=$(printf ' %q' "--config=$config" "$@")
on_all_workers "set -e; cd $REMOTE_DIR && mkdir -p $LOG_DIR && worker=$WORKER_INDEX
  log=$LOG_DIR/$RUN_NAME.worker\$worker.log
  echo \"\$(date -u) \$(hostname): python launch/$launcher.py$args\" > \$log
  setsid nohup .venv/bin/python launch/$launcher.py$args >> \$log 2>&1 < /dev/null &
  echo \$! > $LOG_DIR/$RUN_NAME.worker\$worker.pid
  echo $RUN_NAME > $LOG_DIR/LATEST
  echo \"worker \$worker: started $RUN_NAME (pid \$(cat $LOG_DIR/$RUN_NAME.worker\$worker.pid)), log $REMOTE_DIR/\$log\""
