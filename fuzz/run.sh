#!/usr/bin/env bash
# Coverage-guided fuzzing of NormSharp's file parsers with afl++ through SharpFuzz (see fuzz/README.md).
#   fuzz/run.sh build                      publish the targets, write the seed corpora, instrument the libraries
#   fuzz/run.sh run <target> <seconds>     fuzz one target (idx, safetensors, onnx) for that long
#   fuzz/run.sh start <seconds>            fuzz the three targets in parallel in the background, at low priority
#   fuzz/run.sh all <seconds>              build, then start
#   fuzz/run.sh stats                      print each campaign's execs, corpus, crashes and hangs
# Everything it writes goes under fuzz/out/ (ignored by git): bin/, tools/, seeds/<target>/, findings/<target>/
# (earlier campaigns in findings/<target>.1, .2, ...; a new one starts from the last one's queue), <target>.log.
# A crash input found is replayed (uninstrumented) with
# `dotnet run --project fuzz/NormSharp.Fuzz -c Release -- replay <target> FILE...`, fixed, and copied to
# fuzz/regressions/<target>/, whose files the tests replay on every CI run.
set -euo pipefail
cd "$(dirname "$0")"
SELF="$PWD/$(basename "$0")"
OUT="$PWD/out"
TARGETS=(idx safetensors onnx)
SHARPFUZZ_VERSION=2.3.0

build() {
  rm -rf "$OUT/bin"
  dotnet publish NormSharp.Fuzz/NormSharp.Fuzz.csproj -c Release -o "$OUT/bin" -nodeReuse:false
  for target in "${TARGETS[@]}"; do
    rm -rf "$OUT/seeds/$target"
    dotnet "$OUT/bin/NormSharp.Fuzz.dll" seed "$target" "$OUT/seeds/$target"
  done
  if [[ ! -x "$OUT/tools/sharpfuzz" ]]; then
    dotnet tool install SharpFuzz.CommandLine --version "$SHARPFUZZ_VERSION" --tool-path "$OUT/tools"
  fi
  # The code under test is instrumented; the harness itself and SharpFuzz are not (SharpFuzz's own rule).
  for dll in NormSharp.dll NormSharp.Onnx.dll Google.Protobuf.dll; do
    "$OUT/tools/sharpfuzz" "$OUT/bin/$dll"
  done
}

run() {
  local target=$1 seconds=$2
  # dotnet is not an afl-instrumented binary (SharpFuzz speaks the fork-server protocol from .NET), the machine's
  # CPU governor and core_pattern are not ours to change, and several fuzzers share the cores.
  export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
  # A queue carried over from an earlier campaign may hold an input that crashes the code as it is now: skip it.
  export AFL_SKIP_CRASHES=1
  # An allocation the budget in FuzzTargets.cs would flag is also stopped here, as an OutOfMemoryException (a crash),
  # before it can take the machine's memory: 3 GiB per target process.
  export DOTNET_GCHeapHardLimit=0xC0000000
  # A later campaign starts from the corpus the previous one reached (its queue holds the seeds too); the previous
  # findings are kept beside it, numbered, with their fuzzer_stats.
  local input="$OUT/seeds/$target"
  mkdir -p "$OUT/findings"
  if [[ -d $OUT/findings/$target ]]; then
    local n=1
    while [[ -d $OUT/findings/$target.$n ]]; do n=$((n + 1)); done
    mv "$OUT/findings/$target" "$OUT/findings/$target.$n"
    input="$OUT/findings/$target.$n/default/queue"
  fi
  # -t: a parse that takes 5 s on a shared machine is a hang; -m none: .NET reserves far more address space than it uses.
  # A dictionary gives afl++ the tokens it cannot discover through coverage (JSON keys, operator names).
  local dictionary=()
  [[ -f dictionaries/$target.dict ]] && dictionary=(-x "dictionaries/$target.dict")
  afl-fuzz -i "$input" -o "$OUT/findings/$target" -t 5000 -m none -V "$seconds" "${dictionary[@]}" \
    -- dotnet "$OUT/bin/NormSharp.Fuzz.dll" "$target"
}

# The three campaigns in parallel, in the background, at low priority so that builds on the machine keep theirs.
start() {
  for target in "${TARGETS[@]}"; do
    nohup nice -n 15 "$SELF" run "$target" "$1" >"$OUT/$target.log" 2>&1 &
    echo "fuzzing $target for $1 s (pid $!, log $OUT/$target.log)"
  done
}

stats() {
  local file
  for file in "$OUT"/findings/*/default/fuzzer_stats; do
    [[ -f $file ]] || { echo "no campaign yet"; continue; }
    echo "== $(basename "$(dirname "$(dirname "$file")")")"
    grep -E '^(start_time|last_update|run_time|execs_done|execs_per_sec|corpus_count|corpus_found|saved_crashes|saved_hangs|stability|bitmap_cvg)\b' "$file"
  done
}

case "${1:-}" in
  build) build ;;
  run) run "$2" "$3" ;;
  start) start "$2" ;;
  all) build && start "$2" ;;
  stats) stats ;;
  *) sed -n '2,/^set -euo/p' "$SELF" | grep '^#'; exit 2 ;;
esac
