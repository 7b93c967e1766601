#!/usr/bin/env bash
# Creates a TPU VM or pod slice: ACCELERATOR=v5p-64 launch/tpu/create.sh
source "$(dirname "$0")/env.sh"
gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" $PROJECT_FLAG \
  --accelerator-type="$ACCELERATOR" --version="$RUNTIME"
