#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args]
# Multi-process training through torchrun (MMEngine's 'pytorch' launcher).
# On CPU-only machines the processes use the gloo backend automatically
# (pass --cfg-options env_cfg.dist_cfg.backend=gloo to force it).
# Several nodes: run it on each with NNODES, NODE_RANK (0..NNODES-1),
# MASTER_ADDR (node 0's address) and the same PORT. When a rank dies or
# hangs, the others stop within env_cfg.dist_cfg.timeout seconds (15 min in
# configs/_base_/default_runtime.py) with one line naming the ranks that
# stopped answering; the node of a dead rank ends at once.
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
