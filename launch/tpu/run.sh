#!/usr/bin/env bash
# Runs one launcher with one config on every worker at once (each host runs the same command;
# JAX connects them through jax.distributed.initialize()).
#   launch/tpu/run.sh ssd configs/paper/qwen3_4b_instruct.py --config.workdir=gs://BUCKET/runs/q4b
source "$(dirname "$0")/env.sh"
if [ $# -lt 2 ]; then
  echo "usage: $0 <sample|train|evaluate|ssd> <config file> [--config.field=value ...]" >&2
  exit 2
fi
launcher=$1; config=$2; shift 2
on_all_workers "cd $REMOTE_DIR && . .venv/bin/activate && python launch/$launcher.py --config=$config $*"
