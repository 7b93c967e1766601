# Shared settings for the TPU scripts; override any of them in the environment.
#   TPU_NAME      name of the TPU VM / pod slice            (default: ssd-jax)
#   ZONE          GCP zone                                  (default: us-east5-a)
#   ACCELERATOR   slice type, e.g. v5p-8, v5p-64, v6e-16    (default: v5p-8)
#   RUNTIME       TPU VM software version                   (default: v2-alpha-tpuv5)
#   PROJECT       GCP project (default: gcloud's configured project)
#   REPO_URL      where workers clone ssd-jax from          (default: this checkout's origin)
#   REMOTE_DIR    checkout location on every worker          (default: ~/ssd-jax)
#   LOG_DIR       per-worker logs and pid files, relative to REMOTE_DIR (default: logs)
set -euo pipefail
TPU_NAME=${TPU_NAME:-ssd-jax}
ZONE=${ZONE:-us-east5-a}
ACCELERATOR=${ACCELERATOR:-v5p-8}
RUNTIME=${RUNTIME:-v2-alpha-tpuv5}
REMOTE_DIR=${REMOTE_DIR:-ssd-jax}
LOG_DIR=${LOG_DIR:-logs}
PROJECT_FLAG=${PROJECT:+--project=$PROJECT}
REPO_URL=${REPO_URL:-$(git -C "$(dirname "${BASH_SOURCE[0]}")" remote get-url origin 2>/dev/null || true)}

# Runs a command on every worker of the slice.
on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" $PROJECT_FLAG --worker=all --command="$1"
}

# Runs a command on one worker: on_worker <index> <command>.
on_worker() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" $PROJECT_FLAG --worker="$1" --command="$2"
}

# On a worker: its index in the slice (the TPU VM metadata's agent-worker-number; 0 elsewhere).
WORKER_INDEX='$(curl -sf -H "Metadata-Flavor: Google" http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number || echo 0)'

# The run named by $1, else the last one started (run.sh records it on every worker).
run_name() {
  echo "${1:-\$(cat $LOG_DIR/LATEST)}"
}
