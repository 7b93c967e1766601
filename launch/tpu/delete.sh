#!/usr/bin/env bash
# Deletes the TPU VM / slice (billing stops).
source "$(dirname "$0")/env.sh"
gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" $PROJECT_FLAG --quiet
