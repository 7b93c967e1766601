#!/usr/bin/env bash
# Whether a run started by run.sh is still going on each worker, and its last log line there.
#   launch/tpu/status.sh [run name]        (default: the last run started)
source "$(dirname "$0")/env.sh"
run=$(run_name "${1:-}")
on_all_workers "cd $REMOTE_DIR && worker=$WORKER_INDEX && run=$run
  pid=\$(cat $LOG_DIR/\$run.worker\$worker.pid 2>/dev/null || echo)
  if [ -n \"\$pid\" ] && kill -0 \$pid 2>/dev/null; then state=running; else state=stopped; fi
  echo \"worker \$worker \$run: \$state; \$(tail -n 1 $LOG_DIR/\$run.worker\$worker.log 2>/dev/null | tr '\r' '\n' | tail -n 1)\""
