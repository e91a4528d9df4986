#!/usr/bin/env bash
# Issue 13's scaling benchmark: seed-CNN training throughput with SyncBatchNorm, 2 processes x 1 thread against
# 1 process x 1 thread and 1 process x 2 threads, in one run, ROUNDS times alternating (default 2). A fourth line,
# 1 process x 1 thread on half the batch, is each process's share of the work in the 2-process run: its time per
# step is what the 2-process run would take with free communication. Each run times STEPS steps (default 40) after
# WARMUP (default 100, see Program.cs for why). Each round starts with the load average (other programs on the cores
# slow the 2-process run most: every preemption of one process makes the other wait) and ends with the 2-process
# runs' speed-ups over 1 process x 1 thread. The 2-process run goes twice: free to move between the cores
# (--bind-to none), and bound one process to a core (mpirun's default, which README's command line gets). A control
# runs two independent 1-process x 1-thread runs on half the batch at the same time, with no communication: what the
# 2-process run would take if communication and waiting were free but the two processes still shared the memory
# system (caches, bandwidth), the ceiling for its speed-up.
#   bash bench/NormSharp.Distributed.Scaling/run.sh [ROUNDS] [STEPS] [WARMUP]
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-2}; steps=${2:-40}; warmup=${3:-100}
dotnet build -c Release -nodeReuse:false -v q >/dev/null
dll=bin/Release/net10.0/NormSharp.Distributed.Scaling.dll
mpi=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe --mca btl self,vader --mca oob_tcp_if_include lo)
speed() { grep -o '[0-9.]* img/s' <<<"$1" | cut -d' ' -f1; }
for round in $(seq "$rounds"); do
  echo "round $round, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  one=$(dotnet "$dll" 1 "$steps" "$warmup"); echo "$one"
  dotnet "$dll" 2 "$steps" "$warmup"
  dotnet "$dll" 1 "$steps" "$warmup" 64
  echo "two of the last at once, independent:"
  dotnet "$dll" 1 "$steps" "$warmup" 64 & dotnet "$dll" 1 "$steps" "$warmup" 64; wait
  free=$("${mpi[@]}" --bind-to none -np 2 dotnet "$dll" 1 "$steps" "$warmup"); echo "$free"
  bound=$("${mpi[@]}" -np 2 dotnet "$dll" 1 "$steps" "$warmup"); echo "$bound"
  awk -v one="$(speed "$one")" -v free="$(speed "$free")" -v bound="$(speed "$bound")" \
    'BEGIN { printf "2 processes x 1 thread over 1 x 1: %.2fx unbound, %.2fx bound to cores\n", free / one, bound / one }'
done
