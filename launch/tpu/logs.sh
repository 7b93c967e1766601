#!/usr/bin/env bash
# Shows one worker's log of a run started by run.sh (worker 0 holds the progress bars and tables).
#   launch/tpu/logs.sh [-f] [worker index] [run name]   (defaults: worker 0, the last run started)
source "$(dirname "$0")/env.sh"
follow=""
if [ "${1:-}" = "-f" ]; then follow="-f"; shift; fi
worker=${1:-0}
run=$(run_name "${2:-}")
on_worker "$worker" "cd $REMOTE_DIR && tail -n 100 $follow $LOG_DIR/$run.worker$worker.log"
