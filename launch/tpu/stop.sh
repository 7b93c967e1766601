#!/usr/bin/env bash
# Stops a run started by run.sh the way a preemption does: SIGTERM to every worker's process.
# Training saves a checkpoint on every host at the same step, then exits; rerun to resume.
#   launch/tpu/stop.sh [run name]          (default: the last run started)
source "$(dirname "$0")/env.sh"
run=$(run_name "${1:-}")
on_all_workers "cd $REMOTE_DIR && worker=$WORKER_INDEX && run=$run
  pid=\$(cat $LOG_DIR/\$run.worker\$worker.pid 2>/dev/null || echo)
  if [ -n \"\$pid\" ] && kill -TERM \$pid 2>/dev/null; then echo \"worker \$worker: SIGTERM sent to \$pid\";
  else echo \"worker \$worker: \$run is not running\"; fi"
