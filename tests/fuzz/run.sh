#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) and runs each one:
#   1. its regression inputs (regressions/TARGET/) and seed corpus (corpus/TARGET/), once each;
#   2. then, unless SECONDS is 0, fuzzing for SECONDS seconds with a working corpus in BUILD_DIR.
# usage: tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
#   SECONDS    fuzzing time per target (default 10; 0: regressions and seeds only)
#   BUILD_DIR  build folder (default ${TMPDIR:-/tmp}/msconv-fuzz-build); everything the run writes
#              goes there: working corpora (corpus/), crashing inputs (artifacts/), logs (logs/)
# Environment: FUZZ_TARGETS="pickle recordio" runs only those; FUZZ_JOBS sets the build's -j
# (default 1); CC / CXX choose the compilers (default clang-14 / clang++-14).
# Exits non-zero when a target fails to build or any input crashes, naming the crashing input.
set -uo pipefail

duration=${1:-10}
build=${2:-${TMPDIR:-/tmp}/msconv-fuzz-build}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! [[ $duration =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS] [BUILD_DIR] (SECONDS: a whole number, got '$duration')" >&2
  exit 2
fi

build=$(realpath -m "$build")
case "$build/" in
  "$here"/*)
    echo "run.sh: BUILD_DIR must be outside the source folder $here" >&2
    exit 2
    ;;
esac
mkdir -p "$build"

echo "== configure and build ($build)"
cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="${CC:-clang-14}" \
  -DCMAKE_CXX_COMPILER="${CXX:-clang++-14}" >"$build/configure.log" 2>&1 || {
  cat "$build/configure.log"
  echo "run.sh: configuring failed" >&2
  exit 1
}
targets=${FUZZ_TARGETS:-$(cat "$build/fuzz_targets.txt")}
build_failed=()
for t in $targets; do
  if ! cmake --build "$build" -j "${FUZZ_JOBS:-1}" --target "fuzz_$t" >"$build/build-$t.log" 2>&1; then
    grep -E "error|Error" "$build/build-$t.log" | head -20
    echo "run.sh: fuzz_$t does not build (log: $build/build-$t.log)" >&2
    build_failed+=("$t")
  fi
done

# The options every run shares: memory and time limits that make a runaway input a finding.
common=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=25)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Per-target limits after the common ones (libFuzzer takes a flag's last value). checkpoint:
# LibTorch's own unpickler (Unpickler::readBytes, inside Debian's libtorch) sizes a string from a
# length in the archive before checking it against the record, up to 4 GiB, and fills it: a
# 1.5 KB file costs 1.9 GB for a few seconds, then the read fails and openCheckpoint reports the
# file. Not ours to fix (tests/fuzz/README.md); anything larger is still a finding.
limits_for() {
  case $1 in
    checkpoint) echo "-malloc_limit_mb=4200 -rss_limit_mb=6144" ;;
  esac
}

dict_for() {
  case $1 in
    config_json | config_set | spec | study) echo "$here/dict/config.dict" ;;
  esac
}

# What a failed run reported, most telling line first, at most 160 characters.
reason() {
  local pattern line
  for pattern in 'fuzz allocation cap' 'fuzz property violated' 'terminate called' 'out-of-memory \(' \
    'runtime error' '^SUMMARY' 'ERROR: '; do
    line=$(grep -m1 -E "$pattern" "$1") && break
  done
  echo "${line:0:160}"
}

# The input a failed replay was on: the last file libFuzzer started.
last_running() {
  sed -n 's/^Running: \(.*\)$/\1/p' "$1" | tail -1
}

# The input a failed fuzzing run saved.
written_unit() {
  sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$1" | tail -1
}

mkdir -p "$build/logs" "$build/corpus" "$build/artifacts" "$build/replay"
summary=()
failed=0
for t in $targets; do
  bin="$build/bin/fuzz_$t"
  if [[ " ${build_failed[*]-} " == *" $t "* ]] || [[ ! -x $bin ]]; then
    summary+=("$(printf '%-17s %12s %12s %8s  %s' "$t" - - - "NOT BUILT")")
    failed=1
    continue
  fi
  # 1. Regressions (gzip-compressed ones unpacked into the build folder) and seeds, once each.
  replay="$build/replay/$t"
  rm -rf "$replay" && mkdir -p "$replay"
  inputs=()
  for f in "$here/regressions/$t"/* "$here/corpus/$t"/*; do
    [[ -f $f ]] || continue
    case $(basename "$f") in
      README* | .*) continue ;;
      *.gz)
        gunzip -c "$f" >"$replay/$(basename "${f%.gz}")"
        inputs+=("$replay/$(basename "${f%.gz}")")
        ;;
      *) inputs+=("$f") ;;
    esac
  done
  artifacts="$build/artifacts/$t"
  mkdir -p "$artifacts"
  status=ok
  replay_log="$build/logs/$t-replay.log"
  if ((${#inputs[@]})); then
    # shellcheck disable=SC2046  # the limits are words
    if ! "$bin" "${common[@]}" $(limits_for "$t") -artifact_prefix="$artifacts/" "${inputs[@]}" \
      >"$replay_log" 2>&1; then
      status="CRASH: $(reason "$replay_log")"
      status+=" -> input $(last_running "$replay_log") (log: $replay_log)"
      failed=1
    fi
  fi
  execs=- rate=- secs=0
  # 2. Fuzzing: new inputs go to the working corpus in the build folder; seeds are only read.
  if [[ $status == ok ]] && ((duration > 0)); then
    work="$build/corpus/$t"
    mkdir -p "$work"
    fuzz_log="$build/logs/$t-fuzz.log"
    read -r -a extra <<<"$(limits_for "$t")"
    dict=$(dict_for "$t")
    [[ -n $dict ]] && extra+=(-dict="$dict")
    start=$(date +%s)
    "$bin" "${common[@]}" "${extra[@]}" -max_total_time="$duration" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$work" "$here/corpus/$t" >"$fuzz_log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$fuzz_log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$fuzz_log" | tail -1)
    if ((rc != 0)); then
      status="CRASH: $(reason "$fuzz_log")"
      status+=" -> input $(written_unit "$fuzz_log") (log: $fuzz_log)"
      failed=1
    fi
  fi
  line=$(printf '%-17s %12s %12s %8s  %s' "$t" "${execs:--}" "${rate:--}" "$secs" "$status")
  echo "$line"
  summary+=("$line")
done

echo
echo "== summary (fuzzing ${duration}s per target; regressions and seeds replayed first)"
printf '%-17s %12s %12s %8s  %s\n' target executions exec/s seconds result
printf '%s\n' "${summary[@]}"
if ((failed)); then
  echo "run.sh: some target crashed or did not build; crashing inputs are named above" >&2
  exit 1
fi
