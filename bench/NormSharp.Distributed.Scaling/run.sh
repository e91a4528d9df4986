#!/usr/bin/env bash
# Issue 13's scaling benchmark: seed-CNN training throughput with SyncBatchNorm, 2 processes x 1 thread against
# 1 process x 1 thread and 1 process x 2 threads, in one run, ROUNDS times alternating (default 2). A fourth line,
# 1 process x 1 thread on half the batch, is each process's share of the work in the 2-process run: its time per
# step is what the 2-process run would take with free communication.
#   bash bench/NormSharp.Distributed.Scaling/run.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-2}; steps=${2:-40}
dotnet build -c Release -nodeReuse:false -v q >/dev/null
dll=bin/Release/net10.0/NormSharp.Distributed.Scaling.dll
mpi=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --mca btl self,vader --mca oob_tcp_if_include lo --bind-to none)
for round in $(seq "$rounds"); do
  echo "round $round"
  dotnet "$dll" 1 "$steps"
  dotnet "$dll" 2 "$steps"
  dotnet "$dll" 1 "$steps" 30 64
  "${mpi[@]}" -np 2 dotnet "$dll" 1 "$steps"
done
