#!/usr/bin/env bash
# Spark GPU discovery script: prints the GPUs of this node as Spark's resource JSON.
# Point spark.worker.resource.gpu.discoveryScript (standalone) or
# spark.executor.resource.gpu.discoveryScript (YARN/K8s) at this file.
#
# Addresses are nvidia-smi's indices (PCI bus order; sparkframes sets CUDA_DEVICE_ORDER=PCI_BUS_ID
# so that CUDA numbers devices the same way). Where the cluster manager sets CUDA_VISIBLE_DEVICES
# (YARN, Kubernetes), CUDA renumbers the devices it lists from 0 and an index may name none of
# them: set SPARKFRAMES_GPU_ADDRESS=uuid to report UUIDs (GPU-…), which sparkframes looks up
# among the visible devices whatever their numbering.
set -euo pipefail
field=index
if [ "${SPARKFRAMES_GPU_ADDRESS:-index}" = uuid ]; then
  field=uuid
fi
addresses=$(nvidia-smi --query-gpu="$field" --format=csv,noheader | sed -e 's/^ *//' -e 's/ *$//' -e 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
