#!/usr/bin/env bash
# The sanitizer runs (ctest `sanitize_address` and `sanitize_thread` in ./lab test, or
# ./lab sanitize MODE): a build tree of this project instrumented throughout, with only the
# targets the run needs built (one unity build, -O1), then those tests run under it.
#   run.sh address BUILD_DIR [CTEST ARGS]  AddressSanitizer + UndefinedBehaviorSanitizer: msconv,
#       msconv_tests and msconv_thread_tests; every core gtest and every suite of msconv (label
#       core|threads|cli; msconv-lab's and msconv-scope's suites, label gui, need the windows).
#   run.sh thread BUILD_DIR [CTEST ARGS]   ThreadSanitizer: msconv_thread_tests, the threaded parts
#       (the loader's workers, ranks as threads, the training worker, the inspect queue; label
#       threads).
# A report fails the test that produced it; what is suppressed, and why, is in *.supp beside this.
set -euo pipefail

mode=${1:?usage: run.sh address|thread BUILD_DIR [CTEST ARGS]}
build=${2:?usage: run.sh address|thread BUILD_DIR [CTEST ARGS]}
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jobs=${MSCONV_JOBS:-$(nproc)}

case "$mode" in
  address)
    sanitizers=address,undefined
    targets=(msconv msconv_tests msconv_thread_tests)
    labels='core|threads|cli'
    ;;
  thread)
    sanitizers=thread
    targets=(msconv_thread_tests)
    labels='threads'
    ;;
  *)
    echo "run.sh: unknown mode '$mode' (address or thread)" >&2
    exit 2
    ;;
esac

if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" -DMSCONV_SANITIZE="$sanitizers" \
    -DCMAKE_UNITY_BUILD=ON -DMSCONV_BUILD_BENCH=OFF -DMSCONV_SCOPE=OFF -DMSCONV_CUDA_KERNELS=OFF -DMSCONV_GUI="${MSCONV_GUI:-ON}" \
    "${launcher[@]}" >"$build.configure.log" 2>&1 || {
    cat "$build.configure.log" >&2
    exit 1
  }
fi
start=$(date +%s)
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
now=$(date +%s)
echo "run.sh: $mode build $((now - start)) s" >&2

# Every report is an error: the process exits non-zero at the first one and its test fails.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$here/ubsan.supp:${UBSAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$here/tsan.supp:${TSAN_OPTIONS:-}"
# The CLI suites skip what only repeats a path many times (test_train_cli's kill loops).
export MSCONV_SANITIZER=$mode
# LibTorch's OpenMP runtime (libgomp) is not instrumented: its parallel regions would be invisible
# synchronisation to ThreadSanitizer. One OpenMP thread for LibTorch's own pool by default (a test
# that sets a thread count overrides it); the threads tested are ours. The thread build compiles
# our kernels without OpenMP (core/CMakeLists.txt), so they never run on libgomp's threads there;
# the address build compiles them with it.
export OMP_NUM_THREADS=1
start=$(date +%s)
rc=0
ctest --test-dir "$build" --output-on-failure -j "${MSCONV_TEST_JOBS:-2}" -L "$labels" "$@" || rc=$?
now=$(date +%s)
echo "run.sh: $mode tests $((now - start)) s, exit $rc" >&2
exit $rc
